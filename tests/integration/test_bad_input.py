"""Bad input gets a clear answer and loses nothing: never a 5xx, never a hang, never a write
built from keys MongoDB reads as operators or paths."""

import json
from typing import Any

import httpx
import pytest

from app.db.mongo import Database
from app.workers.builtin.domain_events import TOPIC
from tests.integration.test_events import cloud_event

ROUTE = f"/events/pubsub/{TOPIC}"
CLOUDEVENT = {"content-type": "application/cloudevents+json"}


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"a": value}
    return value


async def post_raw(client: httpx.AsyncClient, body: bytes, content_type: str) -> httpx.Response:
    return await client.post(ROUTE, content=body, headers={"content-type": content_type})


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/cloudevents+json"),
        (json.dumps(cloud_event({"orderId": "o"})).encode(), "text/plain"),
        (
            json.dumps({k: v for k, v in cloud_event({}).items() if k != "id"}).encode(),
            "application/json",
        ),
        (json.dumps({**cloud_event({}), "id": ""}).encode(), "application/json"),
        (b"[" * 1_000 + b"]" * 1_000, "application/json"),
        (b'{"id": "deep", "data": ' + b'{"a": ' * 1_000 + b"1" + b"}" * 1_001, "application/json"),
    ],
    ids=["not-json", "wrong-content-type", "no-id", "empty-id", "deep-list", "deep-object"],
)
async def test_what_is_no_cloud_event_is_dropped_with_a_logged_reason(
    client: httpx.AsyncClient, db: Database, body: bytes, content_type: str
) -> None:
    response = await post_raw(client, body, content_type)

    assert response.status_code == 200
    assert response.json() == {"status": "DROP"}
    assert await db["domain_events"].count_documents({}) == 0


async def test_a_five_megabyte_event_is_dropped_not_read(
    client: httpx.AsyncClient, db: Database
) -> None:
    event = cloud_event({"blob": "x" * 5_000_000})

    response = await client.post(ROUTE, json=event, headers=CLOUDEVENT)

    assert response.status_code == 200
    assert response.json()["status"] == "DROP"
    assert "over the limit" in response.json()["reason"]
    assert await db["job_runs"].count_documents({}) == 0


async def test_an_operator_route_refuses_a_body_over_the_limit(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/jobs/flaky_job/trigger", json={"payload": {"key": "k" * 2_000_000}}
    )

    assert response.status_code == 413
    assert "over the limit" in response.json()["detail"]


@pytest.mark.parametrize(
    "data",
    [{"$where": "sleep(1000)"}, {"customer.name": "x"}, {"ok": [{"$set": {"a": 1}}]}],
    ids=["dollar-key", "dotted-key", "nested-operator"],
)
async def test_keys_mongodb_would_read_as_operators_never_reach_a_write(
    client: httpx.AsyncClient, db: Database, data: dict[str, Any]
) -> None:
    event = cloud_event(data)

    response = await client.post(ROUTE, json=event, headers=CLOUDEVENT)

    assert response.json() == {"status": "DROP"}
    assert await db["domain_events"].count_documents({}) == 0
    run = await db["job_runs"].find_one({"trigger.event_id": event["id"]})
    assert run is not None
    assert run["status"] == "dead"
    assert "may not start with '$' or contain '.'" in run["error"]["message"]
    assert isinstance(run["payload"]["unstored_payload"], str)


async def test_an_event_nested_past_what_a_document_holds_is_dead_with_its_reason(
    client: httpx.AsyncClient, db: Database
) -> None:
    event = cloud_event(nested(200))

    response = await client.post(ROUTE, json=event, headers=CLOUDEVENT)

    assert response.json() == {"status": "DROP"}
    run = await db["job_runs"].find_one({"trigger.event_id": event["id"]})
    assert run is not None
    assert "nested more than 64 levels deep" in run["error"]["message"]
