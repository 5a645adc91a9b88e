"""The dead-letter topic: what daprd dead-letters becomes a dead run with its reason."""

import base64
import json
import uuid
from typing import Any

import httpx

from app.dapr.dead_letters import DEAD_LETTER_TOPIC
from app.db.mongo import Database
from app.workers.builtin.domain_events import TOPIC
from tests.integration.test_events import cloud_event


def raw_envelope(raw: bytes) -> dict[str, Any]:
    """What daprd POSTs for a subscription with `rawPayload`: the bytes, base64-encoded."""
    return {
        "id": str(uuid.uuid4()),
        "source": "worker",
        "type": "com.dapr.event.sent",
        "specversion": "1.0",
        "datacontenttype": "application/octet-stream",
        "data_base64": base64.b64encode(raw).decode(),
        "topic": DEAD_LETTER_TOPIC,
        "pubsubname": "pubsub",
    }


async def test_every_subscription_names_the_dead_letter_topic_which_the_app_reads_raw(
    client: httpx.AsyncClient,
) -> None:
    subscriptions = (await client.get("/dapr/subscribe")).json()

    topics = [s for s in subscriptions if s["topic"] != DEAD_LETTER_TOPIC]
    assert topics
    assert all(s["deadLetterTopic"] == DEAD_LETTER_TOPIC for s in topics)
    letters = [s for s in subscriptions if s["topic"] == DEAD_LETTER_TOPIC]
    assert letters == [
        {
            "pubsubname": "pubsub",
            "topic": DEAD_LETTER_TOPIC,
            "route": "/dead-letters/pubsub",
            "metadata": {"rawPayload": "true"},
        }
    ]


async def test_a_dead_lettered_cloud_event_is_a_dead_run_of_its_topics_worker(
    client: httpx.AsyncClient, db: Database
) -> None:
    event = cloud_event({"orderId": "o-dead"})

    response = await client.post(
        "/dead-letters/pubsub", json=raw_envelope(json.dumps(event).encode())
    )

    assert response.json() == {"status": "SUCCESS"}
    run = await db["job_runs"].find_one({"trigger.event_id": event["id"]})
    assert run is not None
    assert run["job"] == "record_domain_event"
    assert run["status"] == "dead"
    assert run["trigger"]["topic"] == TOPIC
    assert run["error"]["type"] == "DeadLettered"
    assert "answered DROP" in run["error"]["message"]
    assert run["payload"] == {"orderId": "o-dead"}


async def test_bytes_that_are_no_cloud_event_are_kept_as_text_on_an_unroutable_dead_run(
    client: httpx.AsyncClient, db: Database
) -> None:
    envelope = raw_envelope(b"\x00not json at all {")

    response = await client.post("/dead-letters/pubsub", json=envelope)

    assert response.json() == {"status": "SUCCESS"}
    run = await db["job_runs"].find_one({"trigger.event_id": envelope["id"]})
    assert run is not None
    assert run["job"] == "unroutable"
    assert run["status"] == "dead"
    assert "not a CloudEvent" in run["error"]["message"]
    assert "not json at all" in run["payload"]


async def test_a_dropped_invalid_event_is_recorded_once_though_dead_lettered_too(
    client: httpx.AsyncClient, db: Database
) -> None:
    event = cloud_event(["not", "an", "object"])
    dropped = await client.post(f"/events/pubsub/{TOPIC}", json=event)
    assert dropped.json() == {"status": "DROP"}

    lettered = await client.post(
        "/dead-letters/pubsub", json=raw_envelope(json.dumps(event).encode())
    )

    assert lettered.json() == {"status": "SUCCESS"}
    runs = await db["job_runs"].find({"trigger.event_id": event["id"]}).to_list()
    assert [run["error"]["type"] for run in runs] == ["ValidationError"]
