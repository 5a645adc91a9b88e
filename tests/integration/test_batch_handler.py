"""Batch handlers: the events that arrive together are handled in one call, and each is still a
run of its own, with its own outcome, retries and result."""

import asyncio
import uuid
from typing import Any

import httpx

from app.db.mongo import Database
from tests.integration.test_events import cloud_event
from tests.support import eventually
from tests.workers import BATCH_TOPIC, batch_calls


def batched(**item: Any) -> dict[str, Any]:
    return cloud_event({"item_id": uuid.uuid4().hex, **item})


async def deliver(client: httpx.AsyncClient, events: list[dict[str, Any]]) -> list[str]:
    answers = await asyncio.gather(
        *(client.post(f"/events/pubsub/{BATCH_TOPIC}", json=event) for event in events)
    )
    return [answer.json()["status"] for answer in answers]


async def test_events_that_arrive_together_are_handled_in_few_calls(
    client: httpx.AsyncClient, db: Database
) -> None:
    batch_calls.clear()
    events = [batched() for _ in range(24)]

    assert await deliver(client, events) == ["SUCCESS"] * 24

    assert sum(batch_calls) == 24
    assert len(batch_calls) < 24, batch_calls
    assert max(batch_calls) <= 8
    ids = [event["data"]["item_id"] for event in events]
    runs = await db["job_runs"].find({"payload.item_id": {"$in": ids}}).to_list()
    assert sorted(run["result"]["item_id"] for run in runs) == sorted(ids)
    assert {run["status"] for run in runs} == {"succeeded"}
    stored = await db["batched_items"].find({"_id": {"$in": ids}}).to_list()
    assert {item["run_id"] for item in stored} == {str(run["_id"]) for run in runs}


async def test_a_call_that_fails_fails_every_run_of_its_batch_and_each_is_retried(
    client: httpx.AsyncClient, db: Database
) -> None:
    events = [batched(fail_attempts=1) for _ in range(5)]

    assert await deliver(client, events) == ["SUCCESS"] * 5

    ids = [event["data"]["item_id"] for event in events]

    async def all_succeeded() -> list[dict[str, Any]] | None:
        runs = await db["job_runs"].find({"payload.item_id": {"$in": ids}}).to_list()
        done = len(runs) == len(ids) and all(run["status"] == "succeeded" for run in runs)
        return runs if done else None

    runs = await eventually(all_succeeded, within=20, what="every run retried to success")
    for run in runs:
        assert [attempt["status"] for attempt in run["attempts"]] == ["failed", "succeeded"]
        assert run["attempts"][0]["error"]["type"] == "RuntimeError"


async def test_a_call_that_hangs_times_out_and_the_next_batch_is_not_held_behind_it(
    client: httpx.AsyncClient, db: Database
) -> None:
    hanging = batched(hang_attempts=1)
    delivery = asyncio.create_task(deliver(client, [hanging]))

    async def hung_call_started() -> bool:
        run = await db["job_runs"].find_one({"payload.item_id": hanging["data"]["item_id"]})
        return run is not None

    await eventually(hung_call_started, within=10, what="the hanging call")
    assert await delivery == ["SUCCESS"]
    run = await db["job_runs"].find_one({"payload.item_id": hanging["data"]["item_id"]})
    assert run is not None
    # The run's own timeout, which started before the call's: the call's frees the batches
    # behind it, which the next delivery shows.
    assert run["attempts"][0]["error"]["type"] == "TimedOut"

    following = batched()
    assert await deliver(client, [following]) == ["SUCCESS"]
    run = await db["job_runs"].find_one({"payload.item_id": following["data"]["item_id"]})
    assert run is not None
    assert [attempt["status"] for attempt in run["attempts"]] == ["succeeded"]
