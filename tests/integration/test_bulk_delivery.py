"""Bulk deliveries (`POST /bulk-events/<pubsub>/<topic>`), as daprd sends them for a
bulk-subscribed topic: every entry is handed to the dispatcher at once and answered on its own,
by its entryId, with the answers a single delivery of it would get."""

import json
import uuid
from typing import Any

import httpx

from app.core.config import Settings
from app.db.mongo import Database
from tests.integration.conftest import serve
from tests.integration.test_events import cloud_event
from tests.workers import BATCH_TOPIC, BULK_WORK_QUEUE, batch_calls


def entry(event: Any, content_type: str = "application/cloudevents+json") -> dict[str, Any]:
    return {"entryId": str(uuid.uuid4()), "event": event, "contentType": content_type}


async def deliver_bulk(
    client: httpx.AsyncClient, topic: str, entries: list[dict[str, Any]]
) -> dict[str, str]:
    response = await client.post(
        f"/bulk-events/pubsub/{topic}",
        json={"id": str(uuid.uuid4()), "entries": entries, "pubsubname": "pubsub", "topic": topic},
    )
    assert response.status_code == 200, response.text
    return {status["entryId"]: status["status"] for status in response.json()["statuses"]}


def work_item(item_id: str | None = None, **data: Any) -> dict[str, Any]:
    return cloud_event({"item_id": item_id or uuid.uuid4().hex, **data})


async def test_a_bulk_delivery_to_a_batch_handler_is_one_batch_and_a_run_per_event(
    client: httpx.AsyncClient, db: Database
) -> None:
    batch_calls.clear()
    entries = [entry(work_item()) for _ in range(8)]

    statuses = await deliver_bulk(client, BATCH_TOPIC, entries)

    assert statuses == {e["entryId"]: "SUCCESS" for e in entries}
    assert batch_calls == [8]
    ids = [e["event"]["data"]["item_id"] for e in entries]
    runs = await db["job_runs"].find({"payload.item_id": {"$in": ids}}).to_list()
    assert sorted(run["trigger"]["event_id"] for run in runs) == sorted(
        e["event"]["id"] for e in entries
    )
    assert {run["status"] for run in runs} == {"succeeded"}


async def test_each_entry_gets_its_own_answer_and_a_bad_one_loses_none_of_the_others(
    client: httpx.AsyncClient, db: Database
) -> None:
    good = [entry(work_item()) for _ in range(3)]
    invalid = entry(cloud_event({"kind": "no item_id"}))
    not_an_event = entry({"no": "id"})
    not_json = entry("plain text", content_type="text/plain")

    statuses = await deliver_bulk(client, BULK_WORK_QUEUE, [*good, invalid, not_an_event, not_json])

    assert statuses == {
        **{e["entryId"]: "SUCCESS" for e in good},
        invalid["entryId"]: "DROP",
        not_an_event["entryId"]: "DROP",
        not_json["entryId"]: "DROP",
    }
    applied = (
        await db["work_items"]
        .find({"_id": {"$in": [e["event"]["data"]["item_id"] for e in good]}})
        .to_list()
    )
    assert [item["times_processed"] for item in applied] == [1, 1, 1]
    dead = await db["job_runs"].find_one({"trigger.event_id": invalid["event"]["id"]})
    assert dead is not None
    assert dead["status"] == "dead"
    assert dead["error"]["type"] == "ValidationError"


async def test_an_event_delivered_again_in_a_later_bulk_delivery_is_applied_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    event = work_item()

    first = await deliver_bulk(client, BULK_WORK_QUEUE, [entry(event)])
    again = await deliver_bulk(client, BULK_WORK_QUEUE, [entry(event), entry(work_item())])

    assert list(first.values()) == ["SUCCESS"]
    assert list(again.values()) == ["SUCCESS", "SUCCESS"]
    item = await db["work_items"].find_one({"_id": event["data"]["item_id"]})
    assert item is not None
    assert item["times_processed"] == 1
    assert await db["job_runs"].count_documents({"trigger.event_id": event["id"]}) == 1


async def test_an_entry_over_the_size_limit_is_dropped_and_its_siblings_run(
    client: httpx.AsyncClient, db: Database
) -> None:
    small = entry(work_item())
    large = entry(work_item(padding="x" * 1_100_000))  # over MaxRequestBytes (1 MiB)

    statuses = await deliver_bulk(client, BULK_WORK_QUEUE, [small, large])

    assert statuses == {small["entryId"]: "SUCCESS", large["entryId"]: "DROP"}
    assert await db["work_items"].find_one({"_id": small["event"]["data"]["item_id"]})


async def test_a_bulk_delivery_the_app_cannot_read_drops_every_entry_it_names(
    client: httpx.AsyncClient,
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(2)]
    too_deep = "[" * 5_000 + "]" * 5_000
    body = (
        '{"entries": ['
        + ", ".join(
            f'{{"entryId": "{entry_id}", "event": {{"id": "e", "data": {too_deep}}}}}'
            for entry_id in ids
        )
        + "]}"
    )

    response = await client.post(f"/bulk-events/pubsub/{BULK_WORK_QUEUE}", content=body)

    assert response.status_code == 200
    assert response.json() == {"statuses": [{"entryId": i, "status": "DROP"} for i in ids]}


async def test_a_bulk_subscribed_topic_is_listed_with_its_batch_size_and_route(
    client: httpx.AsyncClient,
) -> None:
    subscriptions = {s["topic"]: s for s in (await client.get("/dapr/subscribe")).json()}

    assert subscriptions[BATCH_TOPIC]["route"] == f"/bulk-events/pubsub/{BATCH_TOPIC}"
    assert subscriptions[BATCH_TOPIC]["bulkSubscribe"] == {
        "enabled": True,
        "maxMessagesCount": 8,  # the handler's max_batch, under MaxInFlight (32)
        "maxAwaitDurationMs": 5,
    }
    assert subscriptions[BULK_WORK_QUEUE]["bulkSubscribe"]["maxMessagesCount"] == 32
    assert subscriptions[BULK_WORK_QUEUE]["deadLetterTopic"] == "worker-dead-letters"
    assert "bulkSubscribe" not in subscriptions["work-items"]
    assert subscriptions["work-items"]["route"] == "/events/pubsub/work-items"
    assert json.dumps(subscriptions)  # daprd reads it as JSON


async def test_a_bulk_delivery_over_its_bound_is_answered_without_statuses(
    settings: Settings, db: Database
) -> None:
    """Over MaxRequestBytes x MaxInFlight in all: no entry is answered, so daprd retries each
    (none is dropped unread, none is acknowledged)."""
    small = settings.model_copy(
        update={
            "api": settings.api.model_copy(update={"max_request_bytes": 1024}),
            "worker": settings.worker.model_copy(update={"max_in_flight": 4}),
        }
    )
    entries = [entry(work_item(padding="x" * 600)) for _ in range(6)]  # ~5 KiB > 4 KiB

    async with serve(small) as client:
        response = await client.post(
            f"/bulk-events/pubsub/{BULK_WORK_QUEUE}", json={"entries": entries}
        )
        under = await deliver_bulk(client, BULK_WORK_QUEUE, entries[:3])

    assert response.status_code == 200
    assert response.json()["statuses"] == []
    assert "over the limit of 4096" in response.json()["reason"]
    assert set(under.values()) == {"SUCCESS"}
    assert await db["work_items"].count_documents({}) == 3
