"""What an operator does to a run: cancel it, retry it, requeue it from the dead set."""

from app.core.clock import utc_now
from app.dispatch.errors import RunNotActionable
from app.dispatch.executor import RunExecutor
from app.dispatch.intake import RunIntake
from app.models.runs import JobRun, RunStatus, RunTrigger
from app.repositories.runs import RunRepository, UnknownRun


class RunActions:
    def __init__(self, *, runs: RunRepository, executor: RunExecutor, intake: RunIntake) -> None:
        self._runs = runs
        self._executor = executor
        self._intake = intake

    async def cancel(self, run_id: str) -> JobRun:
        run = await self._runs.cancel_waiting(run_id=run_id, now=utc_now())
        if run is not None:
            return run
        run = await self._runs.request_cancel(run_id=run_id)
        if run is None:
            raise RunNotActionable(await self._get(run_id), "cancel", "it has finished")
        self._executor.interrupt(run)
        return run

    async def retry(self, run_id: str) -> JobRun:
        """A failed run: its next attempt now. A finished one: a new run with its payload."""
        run = await self._get(run_id)
        if run.status is RunStatus.FAILED:
            retried = await self._runs.retry_now(run_id=run_id, now=utc_now())
            if retried is not None:
                return retried
            run = await self._get(run_id)
        if not run.status.finished:
            raise RunNotActionable(run, "retry", f"it is {run.status.value}")
        submission = await self._intake.submit(
            self._intake.job(run.job), RunTrigger(type="manual", retry_of=run.id), run.payload
        )
        assert submission.run is not None
        return submission.run

    async def requeue(self, run_id: str) -> JobRun:
        """Runs a dead run's payload again, as a new run; the dead one leaves the dead set.

        The new run is stored first, under a key that allows one requeue per dead run; only
        then is the dead run marked. A failure between the two loses nothing: the dead run
        stays in the dead set, and requeueing it again finds the run already stored."""
        run = await self._get(run_id)
        if run.status is not RunStatus.DEAD or run.requeued_as:
            raise RunNotActionable(run, "requeue", "it is not in the dead set")
        job = self._intake.job(run.job)
        now = utc_now()
        requeued = JobRun.new(
            id=self._runs.new_id(),
            job=job,
            trigger=RunTrigger(type="requeue", requeued_from=run.id),
            at=now,
            payload=run.payload,
            next_attempt_at=now,
            sequence_key=run.sequence_key,
        )
        dedupe_key = f"requeue:{run.id}"
        if not await self._runs.insert(requeued, dedupe_key=dedupe_key):
            existing = await self._runs.find_by_dedupe_key(job=job.name, dedupe_key=dedupe_key)
            assert existing is not None, "a duplicate key names an existing run"
            requeued = existing
        if not await self._runs.mark_requeued(run_id=run_id, new_run_id=requeued.id):
            raise RunNotActionable(run, "requeue", "it was requeued already")
        return requeued

    async def _get(self, run_id: str) -> JobRun:
        run = await self._runs.get(run_id)
        if run is None:
            raise UnknownRun(run_id)
        return run
