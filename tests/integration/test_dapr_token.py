from collections.abc import AsyncIterator

import httpx
import pytest

from app.core.config import Settings
from tests.integration.conftest import serve


@pytest.fixture
async def guarded(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(
        settings.model_copy(
            update={"dapr": settings.dapr.model_copy(update={"app_api_token": "s3cret"})}
        )
    ) as client:
        yield client


async def test_dapr_routes_refuse_calls_without_the_app_token(
    guarded: httpx.AsyncClient,
) -> None:
    assert (await guarded.get("/dapr/subscribe")).status_code == 401
    assert (await guarded.post("/heartbeat-cron")).status_code == 401
    wrong = await guarded.get("/dapr/subscribe", headers={"dapr-api-token": "nope"})
    assert wrong.status_code == 401


async def test_dapr_routes_accept_the_sidecar_with_the_token(
    guarded: httpx.AsyncClient,
) -> None:
    response = await guarded.get("/dapr/subscribe", headers={"dapr-api-token": "s3cret"})
    assert response.status_code == 200


async def test_probes_need_no_token(guarded: httpx.AsyncClient) -> None:
    assert (await guarded.get("/healthz")).status_code == 200


async def test_the_actor_routes_refuse_calls_without_the_app_token(
    guarded: httpx.AsyncClient,
) -> None:
    assert (await guarded.get("/dapr/config")).status_code == 401
    method = "/actors/TickCoordinator/heartbeat/method/Claim"
    assert (await guarded.put(method, json={})).status_code == 401
    allowed = await guarded.get("/dapr/config", headers={"dapr-api-token": "s3cret"})
    assert allowed.status_code == 200
    assert "entities" in allowed.json()
