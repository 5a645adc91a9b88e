"""What the dashboard's overview and Prometheus read: each instance's heartbeat, the run
statistics the heartbeat writes, and `GET /metrics`."""

from collections.abc import AsyncIterator

import httpx
import pytest

from app.core.config import Settings
from app.db.mongo import Database, Document
from tests.integration.conftest import serve
from tests.support import eventually, run_reaching


@pytest.fixture
async def beating(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    fast = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"heartbeat_seconds": 0.2})}
    )
    async with serve(fast) as client:
        yield client


async def test_each_instance_writes_a_heartbeat_and_leaves_when_it_stops(
    settings: Settings, db: Database
) -> None:
    fast = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"heartbeat_seconds": 0.2})}
    )
    async with serve(fast) as client:
        name = (await client.get("/healthz")).json()["instance"]

        async def beat() -> Document | None:
            return await db["instances"].find_one({"_id": name})

        first = await eventually(beat, what="the first heartbeat")
        assert first["rss_bytes"] > 10_000_000
        assert first["version"] == "0.1.0"
        assert first["in_flight"] == 0

        async def later() -> Document | None:
            document = await beat()
            return document if document and document["seen_at"] > first["seen_at"] else None

        await eventually(later, what="a second heartbeat")
        page = (await client.get("/dashboard")).text
        assert name in page
    assert await db["instances"].find_one({"_id": name}) is None


async def test_finished_attempts_are_counted_per_minute_and_hour(
    beating: httpx.AsyncClient, db: Database
) -> None:
    for key in ("s-1", "s-2"):
        run_id = (
            await beating.post("/api/jobs/flaky_job/trigger", json={"payload": {"key": key}})
        ).json()["run_id"]
        await run_reaching(beating, run_id, {"succeeded"})
    dead = (await beating.post("/api/jobs/doomed_job/trigger")).json()["run_id"]
    await run_reaching(beating, dead, {"dead"})

    async def written() -> list[Document] | None:
        found = await db["run_stats"].find({"job": {"$in": ["flaky_job", "doomed_job"]}}).to_list()
        minutes = [d for d in found if d["period"] == "minute"]
        total = sum(sum(d["statuses"].values()) for d in minutes)
        return found if total == 3 else None

    stats = await eventually(written, what="the statistics of three attempts")
    for period in ("minute", "hour"):
        flaky = [d for d in stats if d["period"] == period and d["job"] == "flaky_job"]
        assert sum(d["statuses"]["succeeded"] for d in flaky) == 2
        assert sum(sum(d["duration"].values()) for d in flaky) == 2
        assert sum(sum(d["wait"].values()) for d in flaky) == 2
    overview = (await beating.get("/dashboard")).text
    assert 'href="/dashboard/runs?job=flaky_job"' in overview


async def test_metrics_are_served_for_prometheus(beating: httpx.AsyncClient) -> None:
    dead = (await beating.post("/api/jobs/doomed_job/trigger")).json()["run_id"]
    await run_reaching(beating, dead, {"dead"})

    async def scraped() -> str | None:
        text = (await beating.get("/metrics")).text
        return text if "worker_dead_set_size 1.0" in text else None

    text = await eventually(scraped, what="the dead set counted by the heartbeat")
    response = await beating.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    assert 'worker_run_attempts_total{job="doomed_job",kind="manual",status="dead"} 1.0' in text
    assert 'worker_attempt_duration_seconds_count{job="doomed_job",kind="manual"} 1.0' in text
    assert 'worker_queue_wait_seconds_bucket{job="doomed_job",kind="manual",le="+Inf"}' in text
    assert "worker_runs_in_flight 0.0" in text
    assert "# TYPE worker_event_lag_seconds histogram" in text


async def test_a_paused_binding_answers_its_ticks_without_a_run(
    client: httpx.AsyncClient, db: Database
) -> None:
    assert (await client.post("/api/jobs/scale_tick/pause")).status_code == 204
    tick = (await client.post("/scale-tick-cron")).json()
    assert tick == {
        "run_id": None,
        "created": False,
        "claimed_by": None,
        "paused": True,
        "kept": False,
    }
    assert await db["job_runs"].count_documents({"job": "scale_tick"}) == 0
    pause = await db["paused_jobs"].find_one({"_id": "scale_tick"})
    assert pause is not None
    assert pause["skipped_firings"] == 1

    assert (await client.post("/api/jobs/scale_tick/resume")).status_code == 204
    tick = (await client.post("/scale-tick-cron")).json()
    assert tick["run_id"] is not None
    assert (await client.post("/api/jobs/flaky_job/pause")).status_code == 409  # no trigger
    actions = [d["action"] async for d in db["audit_log"].find().sort("_id", 1)]
    assert actions == ["pause-job", "resume-job"]


async def test_a_paused_schedules_firing_makes_no_run(
    client: httpx.AsyncClient, db: Database
) -> None:
    await db["schedules"].insert_one(
        {
            "_id": "nightly",
            "job": "flaky_job",
            "cron": "0 0 3 * * *",
            "due_time": None,
            "payload": {"key": "n"},
            "created_at": "2026-01-01T00:00:00Z",
            "paused_at": "2026-01-02T00:00:00Z",
        }
    )
    fired = await client.post("/job/nightly", json={"job": "flaky_job", "payload": {"key": "n"}})
    assert fired.json()["paused"] is True
    assert await db["job_runs"].count_documents({}) == 0


async def test_a_schedule_firing_for_no_registered_job_is_refused_and_makes_no_run(
    client: httpx.AsyncClient, db: Database
) -> None:
    named = await client.post("/job/orphan", json={"job": "no_such_job"})
    assert named.status_code == 404
    assert "no_such_job" in named.json()["detail"]
    unnamed = await client.post("/job/orphan")
    assert unnamed.status_code == 404
    assert "schedule 'orphan' names no job" in unnamed.json()["detail"]
    assert await db["job_runs"].count_documents({}) == 0
