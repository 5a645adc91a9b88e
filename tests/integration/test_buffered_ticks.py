"""`overlap="buffer_one"` keeps one run waiting behind the running one, also when ticks come
at once: each reads the job's runs before the other has stored its own. Seen in CI (2026-12-07,
a busy machine delivering firings late, so that they bunched): two runs waited behind one."""

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from bson import ObjectId

from app.db.mongo import Database
from app.models.runs import JobRun, RunStatus, RunTrigger
from app.repositories.runs import RunRepository
from app.workers import registry
from tests.integration.test_cron_binding import _go_time
from tests.workers import BUFFERED_TICK_BINDING


async def test_ticks_that_come_at_once_leave_one_run_waiting_behind_the_running_one(
    client: httpx.AsyncClient, db: Database
) -> None:
    job = registry.get("buffered_tick")
    assert job is not None
    runs = RunRepository(db)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    running = JobRun.new(
        id=runs.new_id(),
        job=job,
        trigger=RunTrigger(type="cron", tick=hour - timedelta(hours=3)),
        at=hour,
        payload=None,
        status=RunStatus.RUNNING,
        started_at=hour,
        instance="another-instance",
    )
    assert await runs.insert(running, lease_until=datetime.now(UTC) + timedelta(hours=1))

    ticks = [hour - timedelta(hours=2), hour - timedelta(hours=1)]
    answers = await asyncio.gather(
        *(
            client.post(f"/{BUFFERED_TICK_BINDING}", headers={"readTimeUTC": _go_time(tick)})
            for tick in ticks
        )
    )

    assert [answer.status_code for answer in answers] == [200, 200]
    others = {"job": "buffered_tick", "_id": {"$ne": ObjectId(running.id)}}
    made = await db["job_runs"].find(others).to_list()
    assert len(made) == 2, [(r["trigger"], r["status"], r.get("error")) for r in made]
    skipped = [run for run in made if (run.get("error") or {}).get("type") == "OverlapSkipped"]
    waiting = [run for run in made if run not in skipped]
    assert len(waiting) == 1, made
    assert len(skipped) == 1, made
    assert f"waiting for run {running.id}" in skipped[0]["error"]["message"]
