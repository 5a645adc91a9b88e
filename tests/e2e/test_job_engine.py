"""Every worker kind through the real sidecar and the operator API of the real process."""

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from bson import ObjectId

from app.db.mongo import Database, Document
from app.workers.builtin.message_queue import TOPIC as WORK_QUEUE
from tests.e2e.customers import progress_reaching, seed_customers
from tests.e2e.deployment import RunningWorker
from tests.partner_api import PartnerApi
from tests.polls import a_poll_went_by
from tests.support import eventually, run_reaching, trigger
from tests.workers import FLAKY_TOPIC, ORDERED_TOPIC

pytestmark = pytest.mark.e2e


async def publish(worker: RunningWorker, topic: str, data: Any) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{worker.sidecar_url}/v1.0/publish/pubsub/{topic}", json=data)
    assert response.status_code == 204, response.text


async def test_the_operator_api_requires_the_token(worker: RunningWorker) -> None:
    async with httpx.AsyncClient(base_url=worker.app_url) as anonymous:
        response = await anonymous.get("/api/jobs")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    async with worker.api() as api:
        assert (await api.get("/api/jobs")).status_code == 200


async def test_queue_items_are_each_processed_once(worker: RunningWorker, e2e_db: Database) -> None:
    batch = uuid.uuid4().hex[:8]
    ids = [f"{batch}-{n}" for n in range(20)]
    await asyncio.gather(*(publish(worker, WORK_QUEUE, {"item_id": i, "kind": "e2e"}) for i in ids))

    async def all_processed() -> list[Document] | None:
        items = await e2e_db["work_items"].find({"_id": {"$in": ids}}).to_list()
        return items if len(items) == len(ids) else None

    items = await eventually(all_processed, what="every work item processed")
    assert {item["times_processed"] for item in items} == {1}

    async def all_runs_succeeded() -> bool:
        query = {
            "job": "MessageQueueProcessor",
            "status": "succeeded",
            "payload.item_id": {"$in": ids},
        }
        return await e2e_db["job_runs"].count_documents(query) == len(ids)

    await eventually(all_runs_succeeded, what="a succeeded run per item")


async def test_an_event_retried_to_death_then_requeued_to_success(
    worker: RunningWorker, e2e_db: Database
) -> None:
    key = f"flaky-{uuid.uuid4().hex[:8]}"
    await publish(worker, FLAKY_TOPIC, {"key": key, "fail_times": 5})

    async def dead_run() -> Document | None:
        return await e2e_db["job_runs"].find_one({"payload.key": key, "status": "dead"})

    dead = await eventually(dead_run, what="the event's run to die after its retries")
    run_id = str(dead["_id"])
    assert dead["attempt"] == 3
    assert [a["status"] for a in dead["attempts"]] == ["failed", "failed", "dead"]
    async with worker.api() as api:
        letters = (await api.get("/api/dead-letters", params={"job": "flaky_event_handler"})).json()
        assert run_id in {item["id"] for item in letters["items"]}

        response = await api.post(f"/api/dead-letters/{run_id}/requeue")
        assert response.status_code == 202
        requeued = await run_reaching(api, response.json()["run_id"], {"succeeded", "dead"})

    assert requeued["status"] == "succeeded"
    assert requeued["attempt"] == 3
    assert requeued["result"] == {"key": key, "attempts_seen": 6}


async def test_a_data_processor_is_cancelled_midway(
    worker: RunningWorker, e2e_db: Database
) -> None:
    await seed_customers(e2e_db, 600)
    async with worker.api() as api:
        run_id = await trigger(
            api, "recompute_customer_summaries", {"chunk_size": 25, "pause_ms": 150}
        )

        await progress_reaching(api, run_id, 50)
        assert (await api.post(f"/api/runs/{run_id}/cancel")).status_code == 202
        run = await run_reaching(api, run_id, {"cancelled", "succeeded"})

    assert run["status"] == "cancelled"
    assert 50 <= run["progress"]["done"] < 600
    assert await e2e_db["customer_summaries"].count_documents({}) == run["progress"]["done"]


async def test_an_integration_task_syncs_through_a_failing_partner(
    worker: RunningWorker, partner: PartnerApi, e2e_db: Database
) -> None:
    partner.state.add_items(120)
    failures_before = partner.state.failures
    async with worker.api() as api:
        first = await run_reaching(api, await trigger(api, "DataSyncWorker"), {"succeeded", "dead"})
        assert first["status"] == "succeeded", first["error"]
        assert partner.state.failures > failures_before, "the partner failed some requests"
        partner.state.add_items(10)
        second = await run_reaching(
            api, await trigger(api, "DataSyncWorker"), {"succeeded", "dead"}
        )

    assert second["result"]["fetched"] == 10
    assert second["result"]["from"] == first["result"]["to"]
    assert await e2e_db["synced_items"].count_documents({}) == len(partner.state.items)


async def test_a_schedule_created_through_the_api_fires_and_stops_when_deleted(
    worker: RunningWorker, e2e_db: Database
) -> None:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    async with worker.api() as api, httpx.AsyncClient() as http:
        response = await api.put(
            f"/api/schedules/{name}",
            json={"job": "flaky_job", "cron": "@every 1s", "payload": {"key": name}},
        )
        assert response.status_code == 200, response.text
        assert response.json()["cron"] == "@every 1s"
        assert name in {s["name"] for s in (await api.get("/api/schedules")).json()}

        async def fired_twice() -> list[Document] | None:
            runs = await e2e_db["job_runs"].find({"trigger.schedule": name}).to_list()
            return runs if len(runs) >= 2 else None

        runs = await eventually(fired_twice, what="two firings of the schedule")
        assert {run["trigger"]["type"] for run in runs} == {"schedule"}
        assert {run["payload"]["key"] for run in runs} == {name}

        assert (await api.delete(f"/api/schedules/{name}")).status_code == 204
        assert name not in {s["name"] for s in (await api.get("/api/schedules")).json()}
        assert (await http.get(f"{worker.sidecar_url}/v1.0/jobs/{name}")).status_code >= 400
        after_delete = await _count_schedule_runs(e2e_db, name)
        # The heartbeat cron fires every 2 s: three more of its runs is a clock of ~6 s.
        await _heartbeats_pass(e2e_db, 3)
        settled = await _count_schedule_runs(e2e_db, name)
        assert settled - after_delete <= 1, "at most a firing already on its way"
        await _heartbeats_pass(e2e_db, 2)
        assert await _count_schedule_runs(e2e_db, name) == settled


async def _count_schedule_runs(db: Database, name: str) -> int:
    return await db["job_runs"].count_documents({"trigger.schedule": name})


async def _heartbeats_pass(db: Database, count: int) -> None:
    start = await db["job_runs"].count_documents({"job": "heartbeat", "trigger.type": "cron"})

    async def passed() -> bool:
        now = await db["job_runs"].count_documents({"job": "heartbeat", "trigger.type": "cron"})
        return now >= start + count

    await eventually(passed, what=f"{count} heartbeat ticks")


async def test_trigger_cancel_and_retry_through_the_api(worker: RunningWorker) -> None:
    async with worker.api() as api:
        run_id = await trigger(api, "deferring_job")
        await run_reaching(api, run_id, {"failed"})

        retried = await api.post(f"/api/runs/{run_id}/retry")
        assert retried.json() == {"run_id": run_id}

        async def second_attempt() -> dict[str, Any] | None:
            run: dict[str, Any] = (await api.get(f"/api/runs/{run_id}")).json()
            return run if len(run["attempts"]) == 2 else None

        await eventually(second_attempt, what="the retried attempt")
        assert (await api.post(f"/api/runs/{run_id}/cancel")).status_code == 202
        run = (await api.get(f"/api/runs/{run_id}")).json()

    assert run["status"] == "cancelled"
    assert ObjectId.is_valid(run["id"])


async def test_a_paused_ordered_handler_keeps_its_events_until_resumed(
    worker: RunningWorker, e2e_db: Database
) -> None:
    """A key sequence's runs are handed to their key's actor by a path of their own: paused,
    they wait like any other."""
    account = uuid.uuid4().hex[:8]
    async with worker.api() as api:
        assert (await api.post("/api/jobs/ordered_ledger/pause")).status_code == 204
        try:
            for seq in range(3):
                await publish(worker, ORDERED_TOPIC, {"account": account, "seq": seq})

            async def stored() -> bool:
                query = {"job": "ordered_ledger", "payload.account": account}
                return await e2e_db["job_runs"].count_documents(query) == 3

            await eventually(stored, what="the three events stored as waiting runs")
            await a_poll_went_by(e2e_db)
            await a_poll_went_by(e2e_db)
            runs = await e2e_db["job_runs"].find({"payload.account": account}).to_list()
            assert {run["status"] for run in runs} == {"pending"}
            assert await e2e_db["test_ledgers"].find_one({"_id": account}) is None
        finally:
            assert (await api.post("/api/jobs/ordered_ledger/resume")).status_code == 204

    async def ledger() -> list[int] | None:
        document = await e2e_db["test_ledgers"].find_one({"_id": account})
        return document["entries"] if document and len(document["entries"]) == 3 else None

    assert sorted(await eventually(ledger, what="the ledger written after the resume")) == [0, 1, 2]
