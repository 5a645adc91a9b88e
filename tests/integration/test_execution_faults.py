"""The execution core under faults: never twice, never stuck, never lost.

Each test here was written against a defect of the executor before its fix: a slow queue item
run twice, a result BSON cannot encode that left its run running for ever, an orphan re-run
without end, a cancel that did nothing, a hung handler, a redelivered schedule firing, a requeue
that could lose its dead run, an outcome write lost to a passing database error.
"""

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from bson import ObjectId
from pymongo.errors import AutoReconnect

from app.core.clock import utc_now
from app.core.config import Settings
from app.db.mongo import Database
from app.repositories.runs import RunRepository
from tests.integration.conftest import serve
from tests.integration.test_events import cloud_event
from tests.support import eventually, run_reaching, trigger
from tests.workers import SINGLE_FILE_TOPIC


async def deliver_to(client: httpx.AsyncClient, topic: str, data: Any) -> str:
    response = await client.post(f"/events/pubsub/{topic}", json=cloud_event(data))
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


async def attempts_of(db: Database, key: str) -> int:
    document = await db["test_attempts"].find_one({"_id": key})
    return int(document["attempts"]) if document else 0


async def test_queued_items_behind_a_slow_one_keep_their_lease_and_run_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    # Lease 2 s; each item takes 1.2 s behind concurrency 1: the last waits 2.4 s for its slot.
    plans = [{"key": f"slow-{n}", "sleep_ms": 1200} for n in range(3)]

    statuses = await asyncio.gather(*(deliver_to(client, SINGLE_FILE_TOPIC, p) for p in plans))

    assert statuses == ["SUCCESS"] * 3
    runs = await db["job_runs"].find({"job": "single_file_queue"}).to_list()
    assert [run["status"] for run in runs] == ["succeeded"] * 3
    assert [run["attempt"] for run in runs] == [1, 1, 1]
    assert [await attempts_of(db, str(p["key"])) for p in plans] == [1, 1, 1]


async def test_a_result_bson_cannot_encode_is_converted(client: httpx.AsyncClient) -> None:
    run_id = await trigger(client, "odd_result_job", {"kind": "convertible"})

    run = await run_reaching(client, run_id, {"succeeded", "dead", "failed"})

    assert run["status"] == "succeeded"
    assert run["result"] == {"total": "12.50", "day": "2026-11-29", "tags": ["vip"]}


async def test_a_result_that_cannot_be_stored_fails_the_attempt_naming_its_type(
    client: httpx.AsyncClient,
) -> None:
    run_id = await trigger(client, "odd_result_job", {"kind": "opaque"})

    run = await run_reaching(client, run_id, {"succeeded", "dead", "failed"}, within=10)

    assert run["status"] == "dead"
    assert run["error"]["type"] == "ResultNotStorable"
    assert "dict" in run["error"]["message"]
    assert "Opaque" in run["error"]["message"]


async def test_an_orphan_whose_attempts_are_used_up_goes_dead_not_round_again(
    client: httpx.AsyncClient, db: Database
) -> None:
    now = utc_now()
    run_id = ObjectId()
    await db["job_runs"].insert_one(
        {
            "_id": run_id,
            "job": "flaky_job",
            "kind": "scheduled",
            "status": "running",
            "trigger": {"type": "manual"},
            "attempt": 3,
            "max_attempts": 3,
            "created_at": now - timedelta(minutes=1),
            "started_at": now - timedelta(minutes=1),
            "instance": "an-instance-that-died",
            "lease_until": now - timedelta(seconds=1),
            "payload": {"key": "orphan-used-up", "fail_times": 0, "sleep_ms": 0},
            "attempts": [],
            "refusals": [],
        }
    )

    run = await run_reaching(client, str(run_id), {"dead", "succeeded"}, within=10)

    assert run["status"] == "dead"
    assert run["attempt"] == 3
    assert run["error"]["type"] == "LeaseExpired"
    assert run["attempts"][-1]["instance"] == "an-instance-that-died"
    assert await attempts_of(db, "orphan-used-up") == 0


async def test_cancel_reaches_a_run_that_executes_on_another_instance(
    settings: Settings, db: Database
) -> None:
    other_app = settings.app.model_copy(update={"instance_id": "b"})
    other = settings.model_copy(update={"app": other_app})
    async with serve(settings) as here, serve(other) as there:
        run_id = await trigger(here, "flaky_job", {"key": "cancel-elsewhere", "sleep_ms": 60_000})

        async def started() -> bool:
            return await attempts_of(db, "cancel-elsewhere") == 1

        await eventually(started, what="the handler to start")
        response = await there.post(f"/api/runs/{run_id}/cancel")
        assert response.status_code == 202, response.text

        run = await run_reaching(there, run_id, {"cancelled", "succeeded", "failed"}, within=10)

    assert run["status"] == "cancelled"
    assert run["error"]["message"] == "cancelled by an operator"
    assert await db["test_completions"].find_one({"_id": "cancel-elsewhere"}) is None


async def test_cancel_of_a_run_waiting_for_its_slot_records_it_cancelled(
    client: httpx.AsyncClient, db: Database
) -> None:
    first = asyncio.ensure_future(
        deliver_to(client, SINGLE_FILE_TOPIC, {"key": "holds-the-slot", "sleep_ms": 3000})
    )
    await eventually(lambda: _attempted(db, "holds-the-slot"), what="the first item to start")
    second = asyncio.ensure_future(
        deliver_to(client, SINGLE_FILE_TOPIC, {"key": "waits-for-the-slot"})
    )
    waiting = await eventually(
        lambda: db["job_runs"].find_one({"payload.key": "waits-for-the-slot"}),
        what="the second run to be stored",
    )

    response = await client.post(f"/api/runs/{waiting['_id']}/cancel")
    assert response.status_code == 202, response.text
    run = await run_reaching(client, str(waiting["_id"]), {"cancelled", "succeeded"}, within=2)

    assert run["status"] == "cancelled"
    assert await attempts_of(db, "waits-for-the-slot") == 0
    assert list(await asyncio.gather(first, second)) == ["SUCCESS", "SUCCESS"]
    holder = await db["job_runs"].find_one({"payload.key": "holds-the-slot"})
    assert holder is not None
    assert holder["status"] == "succeeded"


async def _attempted(db: Database, key: str) -> bool:
    return await attempts_of(db, key) > 0


async def test_shutdown_hands_back_runs_waiting_for_their_slot(
    settings: Settings, db: Database
) -> None:
    quick = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"shutdown_grace_seconds": 0.2})}
    )
    async with serve(quick) as client:
        deliveries = [
            asyncio.ensure_future(
                deliver_to(client, SINGLE_FILE_TOPIC, {"key": f"drain-{n}", "sleep_ms": 30_000})
            )
            for n in range(2)
        ]

        async def both_stored() -> bool:
            return await db["job_runs"].count_documents({"job": "single_file_queue"}) == 2

        async def one_started() -> bool:
            return await db["test_attempts"].count_documents({}) == 1

        await eventually(both_stored, what="both runs to be stored")
        await eventually(one_started, what="one of them to start")
    await asyncio.gather(*deliveries, return_exceptions=True)

    runs = await db["job_runs"].find({"job": "single_file_queue"}).to_list()
    assert [run["status"] for run in runs] == ["pending", "pending"]
    assert all("lease_until" not in run for run in runs)
    assert await db["test_completions"].count_documents({}) == 0


async def test_a_hung_handler_times_out_and_is_retried_like_any_failure(
    client: httpx.AsyncClient, db: Database
) -> None:
    run_id = await trigger(client, "hanging_job", {"key": "hangs"})

    run = await run_reaching(client, run_id, {"dead", "succeeded"}, within=15)

    assert run["status"] == "dead"
    assert [a["error"]["type"] for a in run["attempts"]] == ["TimedOut", "TimedOut"]
    assert "timeout of 0.5 s" in run["error"]["message"]
    assert await attempts_of(db, "hangs") == 2


async def test_a_redelivered_schedule_firing_makes_one_run(
    client: httpx.AsyncClient, db: Database
) -> None:
    await db["schedules"].insert_one(
        {
            "_id": "every-minute",
            "job": "flaky_job",
            "cron": "0 * * * * *",
            "due_time": None,
            "payload": {"key": "scheduled"},
            "created_at": utc_now(),
        }
    )
    data = {"job": "flaky_job", "payload": {"key": "scheduled"}}

    first = (await client.post("/job/every-minute", json=data)).json()
    second = (await client.post("/job/every-minute", json=data)).json()
    if second["run_id"] != first["run_id"]:  # the two firings fell on two minutes
        first = second
        second = (await client.post("/job/every-minute", json=data)).json()

    assert first["created"] is True
    assert second == {
        "run_id": first["run_id"],
        "created": False,
        "claimed_by": None,
        "paused": False,
        "kept": False,
    }
    run = await db["job_runs"].find_one({"_id": ObjectId(first["run_id"])})
    assert run is not None
    assert run["trigger"]["schedule"] == "every-minute"
    assert run["trigger"]["tick"].second == 0


async def test_a_requeue_whose_insert_fails_keeps_the_dead_run(
    client: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = await trigger(client, "doomed_job")
    await run_reaching(client, run_id, {"dead"})
    real_insert = RunRepository.insert

    async def insert_fails_once(self: RunRepository, *args: Any, **kwargs: Any) -> bool:
        monkeypatch.setattr(RunRepository, "insert", real_insert)
        raise AutoReconnect("the database went away mid-requeue")

    monkeypatch.setattr(RunRepository, "insert", insert_fails_once)

    with pytest.raises(AutoReconnect):
        await client.post(f"/api/dead-letters/{run_id}/requeue")
    letters = (await client.get("/api/dead-letters")).json()["items"]
    assert run_id in [letter["id"] for letter in letters]

    retried = await client.post(f"/api/dead-letters/{run_id}/requeue")
    assert retried.status_code == 202, retried.text
    assert await db["job_runs"].count_documents({"trigger.requeued_from": run_id}) == 1


async def test_an_outcome_write_that_fails_once_is_retried_not_lost(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_finish = RunRepository.finish_attempt

    async def finish_fails_once(self: RunRepository, **kwargs: Any) -> bool:
        monkeypatch.setattr(RunRepository, "finish_attempt", real_finish)
        raise AutoReconnect("a primary stepped down")

    monkeypatch.setattr(RunRepository, "finish_attempt", finish_fails_once)

    run_id = await trigger(client, "flaky_job", {"key": "write-retried"})
    run = await run_reaching(client, run_id, {"succeeded", "failed", "dead"}, within=10)

    assert run["status"] == "succeeded"
    assert run["attempt"] == 1
    assert len(run["attempts"]) == 1
