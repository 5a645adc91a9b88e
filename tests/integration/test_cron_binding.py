from datetime import UTC, datetime, timedelta

import httpx
import pytest
from bson import ObjectId

from app.db.mongo import Database, Document
from app.dispatch.missed_ticks import MissedTicks
from app.repositories.pauses import PauseRepository
from app.workers.registry import Job
from tests.support import eventually


async def test_a_cron_tick_leaves_a_run_document(client: httpx.AsyncClient, db: Database) -> None:
    response = await client.post("/heartbeat-cron")

    assert response.status_code == 200
    run_id = response.json()["run_id"]

    async def finished() -> Document | None:
        return await db["job_runs"].find_one({"_id": ObjectId(run_id), "status": "succeeded"})

    run = await eventually(finished, what="the heartbeat run to finish")
    assert await db["job_runs"].count_documents({"job": "heartbeat"}) == 1
    assert run["kind"] == "scheduled"
    assert run["status"] == "succeeded"
    assert run["trigger"]["type"] == "cron"
    assert run["result"]["tick"] == run["trigger"]["tick"].isoformat()


def _go_time(moment: datetime) -> str:
    """A time as daprd's cron binding writes it in `readTimeUTC` (Go's `Time.String()`)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f") + "123 +0000 UTC"


async def test_a_tick_delivered_late_is_the_tick_its_binding_fired_for(
    client: httpx.AsyncClient, db: Database
) -> None:
    """A machine busy for seconds delivers a firing late: its run is of the tick daprd fired
    (its `readTimeUTC`), not of the tick of the moment the app got to it, which another
    firing would already have (two firings, one run, and a tick with none)."""
    fired = datetime.now(UTC) - timedelta(seconds=5)
    response = await client.post("/heartbeat-cron", headers={"readTimeUTC": _go_time(fired)})

    assert response.status_code == 200
    run = await db["job_runs"].find_one({"_id": ObjectId(response.json()["run_id"])})
    assert run is not None
    fired_second = fired.timestamp() // 1
    assert run["trigger"]["tick"].replace(tzinfo=UTC).timestamp() == fired_second - fired_second % 2


async def test_a_firing_time_that_cannot_be_read_is_the_apps_clock(
    client: httpx.AsyncClient, db: Database
) -> None:
    before = datetime.now(UTC)
    response = await client.post("/heartbeat-cron", headers={"readTimeUTC": "yesterday"})

    assert response.status_code == 200
    run = await db["job_runs"].find_one({"_id": ObjectId(response.json()["run_id"])})
    assert run is not None
    assert run["trigger"]["tick"].replace(tzinfo=UTC) > before - timedelta(seconds=2)


async def test_a_firing_whose_deadline_breaks_pymongos_lock_is_kept_as_the_database_away(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyMongo's async lock, cancelled by the firing's deadline while the database is away,
    raises RuntimeError('Lock is not acquired') (CI, a database stop): the tick is kept, as for
    any database-away firing, not answered 500 and lost."""
    kept: list[tuple[str, datetime]] = []

    async def lock_broken(self: PauseRepository, job: str) -> bool:
        raise RuntimeError("Lock is not acquired")

    async def keep(self: MissedTicks, job: Job, tick: datetime, why: BaseException) -> None:
        kept.append((job.name, tick))

    monkeypatch.setattr(PauseRepository, "skip_firing", lock_broken)
    monkeypatch.setattr(MissedTicks, "keep", keep)

    response = await client.post("/heartbeat-cron")

    assert response.status_code == 200, response.text
    assert response.json()["kept"] is True
    assert [job for job, _ in kept] == ["heartbeat"]
