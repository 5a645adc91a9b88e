"""The ScheduledReportWorker and the history cleanup, over runs seeded in the database."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from bson import ObjectId

from app.core.clock import utc_now
from app.db.mongo import Database
from tests.support import run_reaching, trigger


def finished_run(
    job: str,
    status: str,
    finished_at: datetime,
    duration_ms: float,
    error: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "_id": ObjectId(),
        "job": job,
        "kind": "scheduled",
        "status": status,
        "trigger": {"type": "manual"},
        "attempt": 1,
        "max_attempts": 3,
        "created_at": finished_at - timedelta(milliseconds=duration_ms),
        "started_at": finished_at - timedelta(milliseconds=duration_ms),
        "finished_at": finished_at,
        "duration_ms": duration_ms,
        "error": error,
        "attempts": [],
    }


async def test_the_daily_report_counts_percentiles_and_top_errors(
    client: httpx.AsyncClient, db: Database
) -> None:
    day = datetime(2026, 3, 14, tzinfo=UTC)
    boom = {"type": "TimeoutError", "message": "partner too slow"}
    runs = [
        finished_run("alpha", "succeeded", day + timedelta(minutes=n), float(n))
        for n in range(1, 21)
    ]
    runs += [finished_run("beta", "dead", day + timedelta(hours=2), 5.0, boom) for _ in range(3)]
    runs += [
        finished_run(
            "beta",
            "cancelled",
            day + timedelta(hours=3),
            7.0,
            {"type": "Cancelled", "message": "by an operator"},
        )
    ]
    runs += [finished_run("alpha", "succeeded", day - timedelta(minutes=1), 999.0)]  # day before
    runs += [finished_run("alpha", "succeeded", day + timedelta(days=1), 999.0)]  # day after
    await db["job_runs"].insert_many(runs)

    run = await run_reaching(
        client,
        await trigger(client, "ScheduledReportWorker", {"date": "2026-03-14"}),
        {"succeeded", "dead"},
    )

    assert run["status"] == "succeeded", run["error"]
    report = await db["reports"].find_one({"_id": "daily-runs:2026-03-14"})
    assert report is not None
    assert report["total_runs"] == 24
    assert report["by_job"]["alpha"] == {
        "runs": 20,
        "by_status": {"succeeded": 20},
        "p50_ms": 10.0,
        "p95_ms": 19.0,
    }
    assert report["by_job"]["beta"]["by_status"] == {"cancelled": 1, "dead": 3}
    assert report["top_errors"][0] == {
        "job": "beta",
        "type": "TimeoutError",
        "message": "partner too slow",
        "count": 3,
    }


async def test_cleanup_deletes_only_finished_runs_past_the_retention(
    client: httpx.AsyncClient, db: Database
) -> None:
    now = utc_now()
    old_finished = finished_run("alpha", "succeeded", now - timedelta(days=45), 1.0)
    old_dead = finished_run("alpha", "dead", now - timedelta(days=31), 1.0)
    recent = finished_run("alpha", "succeeded", now - timedelta(days=2), 1.0)
    old_but_waiting = {
        **finished_run("alpha", "failed", now - timedelta(days=60), 1.0),
        "finished_at": None,
        "next_attempt_at": now + timedelta(days=1),
    }
    await db["job_runs"].insert_many([old_finished, old_dead, recent, old_but_waiting])

    run = await run_reaching(
        client, await trigger(client, "history_cleanup"), {"succeeded", "dead"}
    )

    assert run["result"]["deleted"] == 2
    remaining = {doc["_id"] async for doc in db["job_runs"].find({"job": "alpha"})}
    assert remaining == {recent["_id"], old_but_waiting["_id"]}
