"""Pub/sub deliveries as the sidecar makes them: CloudEvents POSTed to the subscription route."""

import uuid
from typing import Any

import httpx

from app.core.config import Settings
from app.dapr.dead_letters import DEAD_LETTER_TOPIC
from app.db.mongo import Database
from app.workers.builtin.domain_events import TOPIC
from tests.integration.conftest import serve

ROUTE = f"/events/pubsub/{TOPIC}"


def cloud_event(data: Any, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or str(uuid.uuid4()),
        "source": "aevatar-api",
        "type": "com.dapr.event.sent",
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "data": data,
        "topic": TOPIC,
        "pubsubname": "pubsub",
    }


async def deliver(client: httpx.AsyncClient, event: dict[str, Any]) -> str:
    response = await client.post(
        ROUTE, json=event, headers={"content-type": "application/cloudevents+json"}
    )
    assert response.status_code == 200
    status: str = response.json()["status"]
    return status


async def test_subscriptions_come_from_the_registry(client: httpx.AsyncClient) -> None:
    response = await client.get("/dapr/subscribe")

    assert response.status_code == 200
    subscription = next(s for s in response.json() if s["topic"] == TOPIC)
    assert subscription["pubsubname"] == "pubsub"
    assert subscription["route"] == ROUTE


async def test_an_event_is_stored_and_its_run_recorded(
    client: httpx.AsyncClient, db: Database
) -> None:
    event = cloud_event({"orderId": "o-1", "amount": 12.5})

    assert await deliver(client, event) == "SUCCESS"

    stored = await db["domain_events"].find_one({"_id": event["id"]})
    assert stored is not None
    assert stored["data"] == {"orderId": "o-1", "amount": 12.5}
    run = await db["job_runs"].find_one({"trigger.event_id": event["id"]})
    assert run is not None
    assert run["job"] == "record_domain_event"
    assert run["kind"] == "event"
    assert run["status"] == "succeeded"
    assert run["result"] == {"event_id": event["id"], "stored": True}
    assert run["finished_at"] >= run["started_at"]


async def test_a_redelivered_event_is_applied_once(client: httpx.AsyncClient, db: Database) -> None:
    event = cloud_event({"orderId": "o-2"})

    assert await deliver(client, event) == "SUCCESS"
    assert await deliver(client, event) == "SUCCESS"

    assert await db["domain_events"].count_documents({"_id": event["id"]}) == 1
    runs = await db["job_runs"].find({"trigger.event_id": event["id"]}).to_list()
    assert len(runs) == 1, "a redelivery must not start a second run"
    assert runs[0]["result"] == {"event_id": event["id"], "stored": True}


async def test_an_invalid_payload_is_dropped_with_its_reason(
    client: httpx.AsyncClient, db: Database
) -> None:
    event = cloud_event(["not", "an", "object"])

    assert await deliver(client, event) == "DROP"

    assert await db["domain_events"].count_documents({}) == 0
    run = await db["job_runs"].find_one({"trigger.event_id": event["id"]})
    assert run is not None
    assert run["status"] == "dead"
    assert run["error"]["type"] == "ValidationError"
    assert "dictionary" in run["error"]["message"]


async def test_a_body_that_is_not_a_cloud_event_is_dropped(client: httpx.AsyncClient) -> None:
    response = await client.post(ROUTE, content=b"{not json")

    assert response.json() == {"status": "DROP"}


async def test_an_event_for_an_unknown_topic_is_dropped(client: httpx.AsyncClient) -> None:
    response = await client.post("/events/pubsub/no-such-topic", json=cloud_event({}))

    assert response.json() == {"status": "DROP"}


async def test_the_pubsub_named_in_the_settings_is_the_one_subscribed_and_served(
    settings: Settings, db: Database
) -> None:
    renamed = settings.model_copy(
        update={"dapr": settings.dapr.model_copy(update={"pubsub_name": "platform-bus"})}
    )
    event = cloud_event({"orderId": "o-bus"}) | {"pubsubname": "platform-bus"}

    async with serve(renamed) as client:
        subscriptions = (await client.get("/dapr/subscribe")).json()
        on_default = await client.post(f"/events/pubsub/{TOPIC}", json=event)
        on_renamed = await client.post(f"/events/platform-bus/{TOPIC}", json=event)

    ours = next(s for s in subscriptions if s["topic"] == TOPIC)
    assert ours["pubsubname"] == "platform-bus"
    assert ours["route"] == f"/events/platform-bus/{TOPIC}"
    assert {"pubsubname": "platform-bus", "topic": DEAD_LETTER_TOPIC} in [
        {"pubsubname": s["pubsubname"], "topic": s["topic"]} for s in subscriptions
    ]
    assert "pubsub" not in {s["pubsubname"] for s in subscriptions}
    assert on_default.json()["status"] == "DROP"  # no handler on a pub/sub we do not use
    assert on_renamed.json()["status"] == "SUCCESS"
    assert await db["domain_events"].find_one({"_id": event["id"]}) is not None
