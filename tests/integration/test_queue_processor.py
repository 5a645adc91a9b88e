import asyncio
import uuid

import httpx

from app.core.clock import utc_now
from app.db.mongo import Database
from app.repositories.work_items import WorkItemRepository
from app.workers.builtin.message_queue import TOPIC
from tests.integration.test_events import cloud_event
from tests.workers import SLOW_QUEUE_TOPIC, slow_queue_gauge


async def test_a_work_item_is_processed_once(client: httpx.AsyncClient, db: Database) -> None:
    event = cloud_event({"item_id": "item-1", "kind": "resize", "data": {"w": 10}})

    for _ in range(2):  # a redelivery
        response = await client.post(f"/events/pubsub/{TOPIC}", json=event)
        assert response.json() == {"status": "SUCCESS"}

    item = await db["work_items"].find_one({"_id": "item-1"})
    assert item is not None
    assert item["times_processed"] == 1
    assert item["data"] == {"w": 10}


async def test_no_more_than_the_concurrency_limit_run_at_once(client: httpx.AsyncClient) -> None:
    slow_queue_gauge.most = 0
    events = [cloud_event({"item_id": str(uuid.uuid4()), "sleep_ms": 150}) for _ in range(6)]

    answers = await asyncio.gather(
        *(client.post(f"/events/pubsub/{SLOW_QUEUE_TOPIC}", json=event) for event in events)
    )

    assert [answer.json()["status"] for answer in answers] == ["SUCCESS"] * 6
    assert slow_queue_gauge.most == 2


async def test_a_run_attempted_twice_applies_its_item_once(db: Database) -> None:
    items = WorkItemRepository(db)
    at = utc_now()

    marks = [
        await items.mark_processed(
            item_id="item-2", kind="k", data={}, run_id=run_id, instance="i", at=at
        )
        for run_id in ("run-a", "run-a", "run-b")
    ]

    # The same run again (an attempt taken over after its effect): no second effect; another
    # run (the item sent again under another event id): a second one.
    assert marks == [1, 1, 2]
