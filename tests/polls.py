"""Knowing that a poller has looked at the queue, without sleeping: a run queued now, of a job
every test deployment has (`doomed_job`, tests/workers.py), is claimed by the next poll."""

from app.core.clock import utc_now
from app.db.mongo import Database
from app.models.runs import JobRun, RunStatus, RunTrigger
from app.repositories.runs import RunRepository
from app.workers import registry
from tests.support import eventually


async def a_poll_went_by(db: Database) -> None:
    """Returns once a poller has claimed a run queued after now: it has looked at the queue
    since, and would have taken any run it was allowed to."""
    runs = RunRepository(db)
    job = registry.get("doomed_job")
    assert job is not None, "tests.workers registers it"
    now = utc_now()
    queued = JobRun.new(
        id=runs.new_id(),
        job=job,
        trigger=RunTrigger(type="manual"),
        at=now,
        payload=None,
        next_attempt_at=now,
    )
    assert await runs.insert(queued)

    async def claimed() -> bool:
        run = await runs.get(queued.id)
        return run is not None and run.status is not RunStatus.PENDING

    await eventually(claimed, within=20, what="a poller to claim a queued run")
