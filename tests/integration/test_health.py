import gc

import httpx


async def test_liveness_answers_without_dependencies(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200
    # Ours, not the one DaprActor adds on the same path (it has no instance).
    assert response.json()["status"] == "ok"
    assert response.json()["instance"]


async def test_readiness_names_the_missing_sidecar(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["sidecar"]
    assert body["checks"]["mongodb"] == {"status": "ok"}
    assert body["checks"]["sidecar"]["status"] == "failing"


async def test_start_up_freezes_its_objects_out_of_the_collector(
    client: httpx.AsyncClient,
) -> None:
    # A full collection that walks what start-up made (modules, schemas, the registry) pauses
    # every delivery in flight; the app freezes them once its lifespan has started.
    assert (await client.get("/healthz")).status_code == 200
    assert gc.get_freeze_count() > 0
