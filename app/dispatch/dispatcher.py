"""The dispatcher: the run engine's one face. Routes, operator actions and actors ask it to
deliver, fire, trigger, cancel, retry and requeue; it wakes its poller itself.

Behind it:
- `RunIntake` (app/dispatch/intake.py): every trigger becomes a run;
- `KeySequences` (app/dispatch/sequencing.py): the runs of one key, one at a time, in order;
- `RunActions` (app/dispatch/run_actions.py): an operator's cancel, retry and requeue;
- `RunPoller` (app/dispatch/poller.py): claims the runs that wait for an attempt;
- `RunExecutor` (app/dispatch/executor.py): runs attempts and records their outcomes.
"""

import asyncio
from datetime import datetime
from typing import Any

from loguru import logger
from pymongo.errors import PyMongoError

from app.core.clock import utc_now
from app.dapr.cloudevents import CloudEvent
from app.dapr.dead_letters import DeadLetter
from app.dapr.outcomes import DeliveryOutcome
from app.dispatch.backfill import Backfill, backfill
from app.dispatch.delivery_journal import DeliveryJournal
from app.dispatch.engine import EngineParts
from app.dispatch.errors import JobNotPausable, RunNotActionable, UnknownJob
from app.dispatch.executor import RunExecutor
from app.dispatch.intake import RunIntake, Submission
from app.dispatch.missed_ticks import Firing, MissedTicks
from app.dispatch.paused_jobs import PausedJobs
from app.dispatch.poller import RunPoller
from app.dispatch.run_actions import RunActions
from app.dispatch.sequencing import KeySequences
from app.dispatch.workflow_driver import InstanceView, WorkflowDriver
from app.models.runs import JobRun, RunStatus, RunTrigger
from app.models.schedules import JobSchedule
from app.repositories.pauses import Pause, PauseRepository
from app.repositories.runs import UnknownRun
from app.repositories.schedules import ScheduleRepository
from app.workers.registry import Job

# How long a tick's firing may wait for the database's first answer before it is kept for later.
TICK_STORE_SECONDS = 5.0


# PyMongo's async lock, cancelled by the firing's deadline while it selects a server of a
# database that is away, raises RuntimeError("Lock is not acquired") on its way out (seen in CI,
# pymongo 4.x): for a firing that is the database being away too, and the tick is kept.
_CancelledMidLock = RuntimeError


class Dispatcher:
    def __init__(
        self,
        parts: EngineParts,
        executor: RunExecutor,
        *,
        schedules: ScheduleRepository,
        pauses: PauseRepository,
        workflows: WorkflowDriver | None = None,
        journal: DeliveryJournal | None = None,
    ) -> None:
        self._journal = journal
        self._executor = executor
        self._workflows = workflows
        self._runs = parts.runs
        self._schedules = schedules
        self._pauses = pauses
        self._registry = parts.registry
        self._sequences = KeySequences(parts=parts, executor=executor)
        self._paused = PausedJobs(pauses)
        self._intake = RunIntake(
            parts=parts,
            executor=executor,
            sequences=self._sequences,
            paused=self._paused,
            journal=journal,
        )
        self._actions = RunActions(runs=parts.runs, executor=executor, intake=self._intake)
        self._poller = RunPoller(
            parts=parts, executor=executor, sequences=self._sequences, paused=self._paused
        )
        self._polling: asyncio.Task[None] | None = None
        self._reading_pauses: asyncio.Task[None] | None = None
        self._missed = MissedTicks(
            parts=parts, intake=self._intake, pauses=pauses, schedules=schedules
        )
        self._catching_up: asyncio.Task[None] | None = None
        self.instance = parts.instance

    # -- lifetime ----------------------------------------------------------------------------

    def start(self) -> None:
        self._polling = asyncio.create_task(self._poller.run(), name="run-poller")
        self._catching_up = asyncio.create_task(self._missed.run(), name="missed-ticks")
        self._reading_pauses = asyncio.create_task(self._paused.run(), name="paused-jobs")

    async def stop(self) -> None:
        """Stops claiming, then drains the runs in flight (see `RunExecutor.drain`)."""
        self._poller.stop()
        self._missed.stop()
        self._paused.stop()
        if self._catching_up is not None:
            # Its round asks the tick coordinators, which may not answer (daprd stopping beside
            # the app): cut short, as a crash would cut it; what it had not stored stays kept.
            self._catching_up.cancel()
        for task in (self._polling, self._catching_up, self._reading_pauses):
            if task is not None:
                await asyncio.wait({task})
                if not task.cancelled():
                    task.result()  # a loop that failed says so here
        await self._executor.drain()
        if self._journal is not None:
            self._journal.close()

    # -- triggers ----------------------------------------------------------------------------

    def job(self, name: str) -> Job:
        """The registered job of that name; `UnknownJob` otherwise."""
        return self._intake.job(name)

    async def deliver(self, job: Job, event: CloudEvent) -> DeliveryOutcome:
        return await self._intake.deliver_event(job, event)

    async def record_dead_letter(self, job: Job | None, letter: DeadLetter, *, pubsub: str) -> None:
        await self._intake.record_dead_letter(job, letter, pubsub=pubsub)

    async def fire_tick(
        self, job_name: str, *, fired_at: datetime | None = None
    ) -> Submission | None:
        """A cron binding's firing, at `fired_at` (when its daprd fired it; now without one);
        None when an operator paused the job (the skip is counted on its pause). A tick the
        database does not take within a few seconds is kept and stored once it answers again
        (app/dispatch/missed_ticks.py)."""
        job = self.job(job_name)
        fired_at = fired_at or utc_now()
        try:
            # Only the first request waits under a deadline: a run insert cancelled halfway
            # could still land, claimed by an attempt that never starts (then taken for an
            # orphan). The insert fails by itself, at the group commit's deadline.
            async with asyncio.timeout(TICK_STORE_SECONDS):
                paused = await self._pauses.skip_firing(job.name)
            if paused:
                return None
            submission = await self._intake.fire_tick(job, fired_at)
        except (PyMongoError, TimeoutError, _CancelledMidLock) as away:
            tick = job.schedule.tick_of(fired_at) if job.schedule else fired_at
            await self._missed.keep(job, tick, away)
            return Submission(run=None, created=False, kept=True)
        return self._woken(submission)

    async def backfill(
        self, job_name: str, *, since: datetime, until: datetime, dry_run: bool
    ) -> Backfill:
        """Runs for the job's ticks from `since` to `until` that have none; with `dry_run`,
        which ticks there are and which have runs, and nothing made."""
        done = await backfill(
            self.job(job_name),
            since=since,
            until=until,
            dry_run=dry_run,
            intake=self._intake,
            runs=self._runs,
        )
        if done.made:
            self._poller.wake()
        return done

    async def fire_schedule(self, schedule: str, data: Any) -> Submission | None:
        """A Jobs API schedule fired. Its data names the job and the payload (else its stored
        record does); the run is of the occurrence the firing belongs to, so that a firing
        delivered twice is one run. None when the schedule is paused; `UnknownJob` when it
        names no registered job, `PayloadInvalid` for a payload the job refuses. A firing the
        database does not take within a few seconds is kept and stored once it answers again,
        as a tick is."""
        fired_at = utc_now()
        try:
            async with asyncio.timeout(TICK_STORE_SECONDS):  # the first request alone, as a tick's
                stored = await self._schedules.get(schedule)
            return await self._fire_schedule(schedule, data, fired_at, stored)
        except (PyMongoError, TimeoutError, _CancelledMidLock) as away:
            await self._missed.keep_firing(Firing(schedule, fired_at, data), away)
            return Submission(run=None, created=False, kept=True)

    async def _fire_schedule(
        self, schedule: str, data: Any, fired_at: datetime, stored: JobSchedule | None
    ) -> Submission | None:
        named = data.get("job") if isinstance(data, dict) else None
        job_name = named or (stored.job if stored else None)
        if job_name is None or self._registry.get(job_name) is None:
            logger.bind(schedule=schedule, job=job_name).error("schedule fired for no known job")
            raise UnknownJob(job_name or f"(none: schedule {schedule!r} names no job)")
        job = self.job(job_name)
        if stored is not None and stored.paused:
            logger.bind(schedule=schedule).info("paused schedule fired: no run")
            return None
        payload = data.get("payload") if isinstance(data, dict) else None
        occurrence = stored.occurrence_of(fired_at) if stored else fired_at.replace(microsecond=0)
        submission = await self._intake.fire_schedule(job, schedule, payload, occurrence=occurrence)
        return self._woken(submission)

    async def trigger(self, job: Job, payload: Any) -> JobRun:
        submission = self._woken(await self._intake.trigger(job, payload))
        assert submission.run is not None, "a manual trigger always makes a run"
        return submission.run

    async def submit_step(
        self, job: Job, payload: Any, *, parent_run_id: str, step: str, key: str
    ) -> JobRun:
        """A workflow's step: a run of `job`, the child of the workflow's run. `key` names the
        step in its instance: the same step asked again (Dapr runs an activity again when the
        app died during it) finds the run of the first."""
        submission = self._woken(
            await self._intake.submit(
                job,
                RunTrigger(type="workflow"),
                payload,
                dedupe_key=f"step:{key}",
                refusal_reason="the workflow ran this step again (its activity was redelivered)",
                parent_run_id=parent_run_id,
                step=step,
            )
        )
        assert submission.run is not None, "a step always has a run, new or found"
        return submission.run

    async def attempt_ended(self, run_id: str) -> None:
        """Returns once the attempt of that run in flight here has ended (at once if none is)."""
        attempt = self._executor.attempt_of(run_id)
        if attempt is not None:
            await asyncio.wait({attempt})

    async def run_here(self, run_id: str) -> str:
        """Runs a keyed run on this instance, within its key actor's turn; its status then."""
        return await self._sequences.run_here(run_id)

    # -- operator actions --------------------------------------------------------------------

    async def pause(self, job_name: str, *, by: str, drop: bool) -> Pause:
        """Pauses a job: a cron binding's ticks make no runs (counted as skipped); a topic's
        deliveries are stored as runs that wait for the resume, or, with `drop`, as skipped
        runs; none of its waiting runs starts. Every instance sees it within seconds."""
        job = self.job(job_name)
        if job.binding is None and job.topic is None:
            raise JobNotPausable(job.name)
        pause = Pause(job=job.name, paused_at=utc_now(), by=by, drop=drop)
        await self._pauses.pause(pause)
        await self._paused.refresh()
        return pause

    async def resume_job(self, job_name: str) -> bool:
        """Resumes a paused job: its waiting runs start, oldest first."""
        resumed = await self._pauses.resume(self.job(job_name).name)
        await self._paused.refresh()
        self._poller.wake()
        return resumed

    async def cancel(self, run_id: str) -> JobRun:
        return await self._actions.cancel(run_id)

    async def retry(self, run_id: str) -> JobRun:
        run = await self._actions.retry(run_id)
        self._poller.wake()
        return run

    async def requeue(self, run_id: str) -> JobRun:
        run = await self._actions.requeue(run_id)
        self._poller.wake()
        return run

    async def raise_event(self, run_id: str, name: str, data: Any) -> JobRun:
        """An external event for a workflow run's instance (an approval and its data)."""
        run, workflows = await self._workflow_run(run_id, "raise an event on")
        await workflows.raise_event(run_id, name, data)
        return run

    async def suspend(self, run_id: str) -> JobRun:
        """Suspends a workflow run's instance; the run stays running (its attempt waits for the
        instance, leased), noted as suspended."""
        run, workflows = await self._workflow_run(run_id, "suspend")
        await workflows.suspend(run_id)
        return await self._runs.mark_suspended(run_id=run_id, at=utc_now()) or run

    async def resume(self, run_id: str) -> JobRun:
        run, workflows = await self._workflow_run(run_id, "resume")
        if run.suspended_at is None:
            raise RunNotActionable(run, "resume", "it is not suspended")
        await workflows.resume(run_id)
        return await self._runs.mark_suspended(run_id=run_id, at=None) or run

    async def purge(self, run_id: str) -> JobRun:
        """Deletes a finished workflow run's instance from the sidecar's state; the run and its
        steps stay in the history. A run that has not finished is refused: cancel it first."""
        run, workflows = await self._workflow_run(run_id, "purge", finished=True)
        await workflows.purge(run_id)
        return await self._runs.mark_purged(run_id=run_id, at=utc_now()) or run

    async def rerun_from_failed_step(self, run_id: str) -> JobRun:
        """A failed workflow run again from the step that failed: a new run, whose instance
        (made first, so that its drive finds it) replays the failed one's history up to that
        step and runs it and the rest again; the steps before it are not run again."""
        action = "re-run from its failed step"
        run, workflows = await self._workflow_run(run_id, action, finished=True)
        if run.status is not RunStatus.DEAD:
            raise RunNotActionable(run, action, f"it did not fail ({run.status.value})")
        new_id = self._runs.new_id()
        step = await workflows.rerun_from_failed_step(run_id, new_id)
        trigger = RunTrigger(type="manual", retry_of=run.id, from_step=step)
        job = self.job(run.job)
        submission = self._woken(
            await self._intake.submit(job, trigger, run.payload, run_id=new_id)
        )
        assert submission.run is not None, "a new id makes a new run"
        return submission.run

    async def workflow_instance(self, run: JobRun) -> InstanceView | None:
        """A workflow run's instance as the sidecar tells it (None: not a workflow run, or no
        instance the sidecar knows)."""
        if run.kind != "workflow" or self._workflows is None:
            return None
        return await self._workflows.describe(run.id)

    async def _workflow_run(
        self, run_id: str, action: str, *, finished: bool = False
    ) -> tuple[JobRun, WorkflowDriver]:
        """The workflow run an operator acts on: live (or, with `finished`, finished)."""
        run = await self._runs.get(run_id)
        if run is None:
            raise UnknownRun(run_id)
        if run.kind != "workflow":
            raise RunNotActionable(run, action, f"it is a {run.kind} run")
        if run.status.finished != finished:
            why = "it has not finished: cancel it first" if finished else "it has finished"
            raise RunNotActionable(run, action, f"{why} ({run.status.value})")
        if self._workflows is None:
            raise RunNotActionable(run, action, "this app runs no workflows")
        return run, self._workflows

    def _woken(self, submission: Submission) -> Submission:
        self._poller.wake()  # a run queued now is claimed now, not at the next interval
        return submission
