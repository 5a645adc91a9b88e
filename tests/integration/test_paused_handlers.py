"""A paused queue processor (or event handler), in-process against the real database: its
deliveries are stored as runs that wait, `pending` with the reason; none starts while it is
paused; on resume all run, in the order the events were sent. Paused with `drop`, its
deliveries are recorded as skipped runs. A job with limits across instances whose FlowGate
actor cannot be asked (no sidecar here) waits with that reason rather than run unlimited."""

import uuid
from datetime import timedelta
from typing import Any

import httpx

from app.core.clock import utc_now
from app.db.mongo import Database
from tests.integration.test_events import cloud_event
from tests.polls import a_poll_went_by
from tests.support import eventually
from tests.workers import ORDERED_TOPIC, PAUSABLE_ORDER, PAUSABLE_TOPIC

ROUTE = f"/events/pubsub/{PAUSABLE_TOPIC}"


def numbered(series: str, n: int) -> dict[str, Any]:
    event = cloud_event({"series": series, "n": n})
    # As the publishing sidecar sets it: the order the events were sent in.
    event["time"] = (utc_now() + timedelta(milliseconds=10 * n)).isoformat()
    return event


async def deliver_all(client: httpx.AsyncClient, events: list[dict[str, Any]]) -> None:
    for event in reversed(events):  # delivered out of order: the sent time orders them
        response = await client.post(ROUTE, json=event)
        assert response.json() == {"status": "SUCCESS"}


async def test_a_paused_queue_keeps_its_deliveries_and_runs_them_in_order_on_resume(
    client: httpx.AsyncClient, db: Database
) -> None:
    series = uuid.uuid4().hex[:8]
    events = [numbered(series, n) for n in range(8)]
    assert (await client.post("/api/jobs/pausable_queue/pause")).status_code == 204

    await deliver_all(client, events)
    await a_poll_went_by(db)

    runs = [run async for run in db["job_runs"].find({"job": "pausable_queue"})]
    assert len(runs) == 8
    assert {run["status"] for run in runs} == {"pending"}
    assert all(run["held_reason"].startswith("paused by api") for run in runs), runs[0]
    assert await db[PAUSABLE_ORDER].find_one({"_id": series}) is None
    jobs = (await client.get("/api/jobs")).json()
    paused = next(job for job in jobs if job["name"] == "pausable_queue")["paused"]
    assert paused["by"] == "api"
    assert paused["drop"] is False

    assert (await client.post("/api/jobs/pausable_queue/resume")).status_code == 204

    async def all_ran() -> list[int] | None:
        done = await db[PAUSABLE_ORDER].find_one({"_id": series})
        return done["order"] if done and len(done["order"]) == 8 else None

    assert await eventually(all_ran, within=20) == list(range(8))
    finished = [run async for run in db["job_runs"].find({"job": "pausable_queue"})]
    assert {run["status"] for run in finished} == {"succeeded"}
    assert all(run.get("held_reason") is None for run in finished)
    actions = [d["action"] async for d in db["audit_log"].find().sort("_id", 1)]
    assert actions == ["pause-job", "resume-job"]


async def test_a_queue_paused_with_drop_records_its_deliveries_as_skipped(
    client: httpx.AsyncClient, db: Database
) -> None:
    series = uuid.uuid4().hex[:8]
    response = await client.post("/api/jobs/pausable_queue/pause", params={"drop": "true"})
    assert response.status_code == 204

    await deliver_all(client, [numbered(series, n) for n in range(3)])

    runs = [run async for run in db["job_runs"].find({"job": "pausable_queue"})]
    assert len(runs) == 3
    assert {run["status"] for run in runs} == {"cancelled"}
    assert {run["error"]["type"] for run in runs} == {"Skipped"}
    assert "deliveries dropped" in runs[0]["error"]["message"]
    assert (await client.post("/api/jobs/pausable_queue/resume")).status_code == 204
    await a_poll_went_by(db)
    assert await db[PAUSABLE_ORDER].find_one({"_id": series}) is None


async def test_a_manual_job_cannot_be_paused(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/jobs/doomed_job/pause")
    assert response.status_code == 409
    assert "no cron binding and no topic" in response.json()["detail"]


async def test_a_limited_job_whose_gate_cannot_be_asked_waits_with_the_reason(
    client: httpx.AsyncClient, db: Database
) -> None:
    response = await client.post("/api/jobs/one_at_a_time/trigger")
    run_id = response.json()["run_id"]

    async def held() -> dict[str, Any] | None:
        run = await db["job_runs"].find_one({"job": "one_at_a_time"})
        return run if run and run["status"] == "pending" and run.get("held_reason") else None

    run = await eventually(held, within=10)
    assert str(run["_id"]) == run_id
    assert "flow gate 'one_at_a_time' could not be asked" in run["held_reason"]
    assert run["attempts"] == []
    assert run.get("started_at") is None
    assert run["gate"] == "one_at_a_time"


async def test_a_paused_ordered_handler_keeps_its_events_waiting_too(
    client: httpx.AsyncClient, db: Database
) -> None:
    account = uuid.uuid4().hex[:8]
    assert (await client.post("/api/jobs/ordered_ledger/pause")).status_code == 204
    for seq in range(3):
        event = cloud_event({"account": account, "seq": seq, "sleep_ms": 0})
        response = await client.post(f"/events/pubsub/{ORDERED_TOPIC}", json=event)
        assert response.json() == {"status": "SUCCESS"}

    await a_poll_went_by(db)
    await a_poll_went_by(db)

    runs = [run async for run in db["job_runs"].find({"job": "ordered_ledger"})]
    assert len(runs) == 3
    assert {run["status"] for run in runs} == {"pending"}, "a paused key sequence waits"
    assert await db["test_ledgers"].find_one({"_id": account}) is None
