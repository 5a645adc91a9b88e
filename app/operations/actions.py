"""What an operator can do, from the operator API and the dashboard alike: each action is done
through the dispatcher (or the sidecar, for schedules) and written to the audit log."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.core.clock import utc_now
from app.core.errors import Refused
from app.dapr.sidecar import Sidecar
from app.dispatch.backfill import Backfill
from app.dispatch.dispatcher import Dispatcher
from app.dispatch.errors import DispatchError
from app.models.runs import JobRun
from app.models.schedules import JobSchedule, ScheduleSpec
from app.operations.actor import Actor
from app.repositories.audit import AuditEntry, AuditRepository
from app.repositories.pauses import PauseRepository
from app.repositories.run_history import RunHistory
from app.repositories.schedules import ScheduleRepository

EVENT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
"""An external event's name, as a workflow waits for it (`flow.wait_for_event(name)`)."""


@dataclass
class Requeued:
    runs: list[JobRun] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


class UnknownSchedule(Refused, LookupError):
    status_code = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"no schedule named {name!r}")
        self.name = name


@dataclass(frozen=True)
class OperatorActions:
    dispatcher: Dispatcher
    history: RunHistory
    schedules: ScheduleRepository
    pauses: PauseRepository
    sidecar: Sidecar
    audit: AuditRepository

    async def cancel(self, run_id: str, actor: Actor) -> JobRun:
        run = await self.dispatcher.cancel(run_id)
        await self._log(actor, "cancel", run_id, [run_id])
        return run

    async def retry(self, run_id: str, actor: Actor) -> JobRun:
        run = await self.dispatcher.retry(run_id)
        await self._log(actor, "retry", run_id, [run_id, run.id], f"as run {run.id}")
        return run

    async def requeue(self, dead_run_id: str, actor: Actor) -> JobRun:
        run = await self.dispatcher.requeue(dead_run_id)
        await self._log(actor, "requeue", dead_run_id, [dead_run_id, run.id], f"as run {run.id}")
        return run

    async def requeue_matching(
        self, *, job: str | None, fingerprint: str | None, actor: Actor
    ) -> "Requeued":
        """Requeues every dead run of `job` (all jobs: None) whose failure has `fingerprint`;
        one that cannot be (its job is not registered here, another operator requeued it
        first) is skipped with the reason."""
        ids = await self.history.dead_ids_matching(job=job, fingerprint=fingerprint)
        done = Requeued()
        for run_id in ids:
            try:
                done.runs.append(await self.dispatcher.requeue(run_id))
            except DispatchError as refused:
                done.skipped[run_id] = str(refused)
        target = f"job={job or '*'} fingerprint={fingerprint or '*'}"
        detail = f"{len(done.runs)} dead runs requeued, {len(done.skipped)} skipped"
        await self._log(actor, "requeue-matching", target, [r.id for r in done.runs], detail)
        return done

    async def raise_event(self, run_id: str, name: str, data: Any, actor: Actor) -> JobRun:
        run = await self.dispatcher.raise_event(run_id, name, data)
        await self._log(actor, "raise-event", run_id, [run_id], f"event {name!r}")
        return run

    async def suspend(self, run_id: str, actor: Actor) -> JobRun:
        run = await self.dispatcher.suspend(run_id)
        await self._log(actor, "suspend", run_id, [run_id])
        return run

    async def resume(self, run_id: str, actor: Actor) -> JobRun:
        run = await self.dispatcher.resume(run_id)
        await self._log(actor, "resume", run_id, [run_id])
        return run

    async def purge(self, run_id: str, actor: Actor) -> JobRun:
        run = await self.dispatcher.purge(run_id)
        await self._log(actor, "purge", run_id, [run_id], "the workflow instance's state")
        return run

    async def rerun_from_failed_step(self, run_id: str, actor: Actor) -> JobRun:
        run = await self.dispatcher.rerun_from_failed_step(run_id)
        detail = f"as run {run.id}, from step {run.trigger.from_step!r}"
        await self._log(actor, "rerun-from-failed-step", run_id, [run_id, run.id], detail)
        return run

    async def backfill(
        self, name: str, *, since: datetime, until: datetime, dry_run: bool, actor: Actor
    ) -> Backfill:
        """A dry run changes nothing and is not audited."""
        done = await self.dispatcher.backfill(name, since=since, until=until, dry_run=dry_run)
        if not dry_run:
            detail = (
                f"{len(done.made)} runs for ticks from {since.isoformat()} to "
                f"{until.isoformat()} ({len(done.had_runs)} of {len(done.ticks)} had runs)"
            )
            await self._log(actor, "backfill", name, [run.id for run in done.made], detail)
        return done

    async def trigger(self, name: str, payload: Any, actor: Actor) -> JobRun:
        run = await self.dispatcher.trigger(self.dispatcher.job(name), payload)
        await self._log(actor, "trigger", name, [run.id])
        return run

    async def put_schedule(self, name: str, spec: ScheduleSpec, actor: Actor) -> JobSchedule:
        """Creates or replaces the sidecar's job `name` and its record."""
        cron, due_time, payload = spec.cron, spec.due_time, spec.payload
        job = self.dispatcher.job(spec.job)
        asked_at = utc_now()
        await self.sidecar.schedule_job(
            name,
            schedule=cron,
            due_time=due_time.isoformat() if due_time else None,
            data={"job": job.name, "payload": payload},
        )
        schedule = await self.schedules.upsert(name, spec, asked_at=asked_at)
        await self._log(actor, "put-schedule", name, detail=f"{job.name} {cron or due_time}")
        return schedule

    async def delete_schedule(self, name: str, actor: Actor) -> None:
        await self._schedule(name)
        await self.sidecar.delete_job(name)
        await self.schedules.delete(name)
        await self._log(actor, "delete-schedule", name)

    async def pause_schedule(self, name: str, actor: Actor) -> None:
        """The sidecar's job goes; the schedule stays, marked paused."""
        await self._schedule(name)
        await self.sidecar.delete_job(name)
        await self.schedules.set_paused(name, paused_at=utc_now())
        await self._log(actor, "pause-schedule", name)

    async def resume_schedule(self, name: str, actor: Actor) -> None:
        await self.put_schedule(name, await self._schedule(name), actor)
        await self._log(actor, "resume-schedule", name)

    async def pause_job(self, name: str, actor: Actor, *, drop: bool = False) -> None:
        """A cron-bound job's ticks are answered without a run until it is resumed; an event
        handler's or queue processor's deliveries wait as runs (or, with `drop`, are skipped)."""
        await self.dispatcher.pause(name, by=actor.who, drop=drop)
        await self._log(actor, "pause-job", name, detail="dropping deliveries" if drop else "")

    async def resume_job(self, name: str, actor: Actor) -> None:
        await self.dispatcher.resume_job(name)
        await self._log(actor, "resume-job", name)

    async def _schedule(self, name: str) -> JobSchedule:
        schedule = await self.schedules.get(name)
        if schedule is None:
            raise UnknownSchedule(name)
        return schedule

    async def _log(
        self,
        actor: Actor,
        action: str,
        target: str,
        run_ids: list[str] | None = None,
        detail: str = "",
    ) -> None:
        await self.audit.record(
            AuditEntry(
                at=utc_now(),
                who=actor.who,
                role=actor.role,
                action=action,
                target=target,
                run_ids=run_ids or [],
                detail=detail,
                client=actor.client,
            )
        )
