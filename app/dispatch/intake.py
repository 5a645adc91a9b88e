"""Intake: every trigger becomes a run document. A tick, a schedule's firing, a trigger or a
requeue is stored before it runs; a delivered event's first attempt runs first, held by its
unacknowledged message, and its run is written once, as the attempt ends (see `Storage`).

Either way, an event is acknowledged to Dapr only once its run is stored. Across instances,
the actors decide first (one claim per cron tick, one run at a time per key); MongoDB's unique
index on the occurrence stays the second line of defence, and a run notes each second run it
refused, and why. Execution is the executor's.
"""

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from loguru import logger
from pydantic import BaseModel, ValidationError

from app.actors.client import ActorUnavailable
from app.core.clock import utc_now
from app.dapr.cloudevents import CloudEvent
from app.dapr.dead_letters import DeadLetter
from app.dapr.outcomes import DeliveryOutcome
from app.dispatch.delivery_journal import DeliveryJournal, JournalEntry
from app.dispatch.engine import EngineParts
from app.dispatch.errors import PayloadInvalid, UnknownJob
from app.dispatch.executor import RunExecutor
from app.dispatch.flight import Storage
from app.dispatch.overlap import TickPlan, already_waiting_behind, plan_tick
from app.dispatch.paused_jobs import PausedJobs
from app.dispatch.sequencing import KeySequences
from app.dispatch.storable import payload_to_store, unsafe_part
from app.models.runs import JobKind, JobRun, JobSpec, Refusal, RunError, RunStatus, RunTrigger
from app.repositories.pauses import Pause
from app.workers.registry import Job

UNROUTABLE = "unroutable"
"""The job name of dead letters whose topic has no worker here."""


@dataclass(frozen=True)
class _Unroutable:
    name: str = UNROUTABLE
    kind: JobKind = "event"
    max_attempts: int = 1


@dataclass(frozen=True)
class Submission:
    run: JobRun | None  # None: another instance claimed this occurrence
    created: bool  # False: this occurrence had a run already (a redelivery, a second tick)
    claimed_by: str | None = None
    payload: BaseModel | None = None
    """The validated payload of a run this instance stored, for its first attempt here (the
    executor validates a stored payload itself only for a run it read back)."""
    kept: bool = False
    """A tick the database did not take: kept, to be stored once it answers again."""


@dataclass(frozen=True)
class Held:
    """A run stored to wait: why, and its place in the queue (when its occurrence came)."""

    reason: str
    place: datetime


@dataclass(frozen=True)
class _Payload:
    stored: Any  # as the run document keeps it
    model: BaseModel | None  # as the handler takes it (None: the worker has no payload model)


@dataclass(frozen=True)
class RunIntake:
    parts: EngineParts
    executor: RunExecutor
    sequences: KeySequences
    paused: PausedJobs
    journal: DeliveryJournal | None = None
    """Notes each unstored first attempt while it runs: one its process dies in is counted."""
    _attempting: dict[str, "asyncio.Task[bool]"] = field(default_factory=dict)
    """First attempts of delivered events not stored yet, by occurrence: a redelivery to this
    instance while one runs joins it."""

    def job(self, name: str) -> Job:
        job = self.parts.registry.get(name)
        if job is None:
            raise UnknownJob(name)
        return job

    async def deliver_event(self, job: Job, event: CloudEvent) -> DeliveryOutcome:
        """Runs `worker` on one CloudEvent and says what Dapr should do with the message.

        SUCCESS once the run is stored (MongoDB holds it from then on, and retries it itself);
        DROP for a payload that can never be valid; RETRY when the run could not be stored;
        an exception (the database is away) is the route's RETRY, so that Dapr keeps the
        message. While the first attempt runs the unacknowledged message is the run's claim,
        so a short run is written once, when its attempt ends (see `Storage`).
        """
        trigger = RunTrigger(type="event", event_id=event.id, topic=event.topic)
        dedupe_key = f"event:{event.id}"
        try:
            valid = _validated(job, event.data)
        except PayloadInvalid as invalid:
            await self._record_invalid(job, trigger, event.data, invalid, event.id)
            return DeliveryOutcome.DROP
        pause = self.paused.of(job.name)
        if pause is not None:
            await self._keep_paused(job, event, trigger, valid, dedupe_key, pause=pause)
            return DeliveryOutcome.SUCCESS
        lasts = job.kind in ("data", "workflow")
        if not (lasts or job.ordered_by or job.gated) and self.executor.has_capacity:
            return await self._attempt_unstored(job, event, trigger, valid, dedupe_key)
        submission = await self.submit(
            job, trigger, event.data, dedupe_key=dedupe_key, start=False, valid=valid
        )
        run = submission.run
        if not submission.created or run is None:
            return DeliveryOutcome.SUCCESS
        lag = event.seconds_since_sent(run.created_at)
        if lag is not None:
            self.executor.metrics.event_lag(topic=job.topic or "", seconds=lag)
        if run.sequence_key is not None:
            await self.sequences.run_in_sequence(run, first_hand=True)
        elif run.status is RunStatus.RUNNING and job.kind == "workflow":
            # A workflow may last days: its stored run is its claim, not the delivery.
            self.executor.start(run, payload=submission.payload)
        elif run.status is RunStatus.RUNNING:
            # The first attempt runs while Dapr waits, which paces deliveries to the worker's
            # speed; shielded, so that a dropped connection does not abandon it halfway.
            await asyncio.shield(self.executor.start(run, payload=submission.payload))
        return DeliveryOutcome.SUCCESS

    async def _keep_paused(
        self,
        job: Job,
        event: CloudEvent,
        trigger: RunTrigger,
        valid: "_Payload",
        dedupe_key: str,
        *,
        pause: Pause,
    ) -> None:
        """A delivery of a paused job: a run that waits for the resume, in the order the events
        were sent; with the pause's `drop`, a skipped (cancelled) run."""
        since = f"paused by {pause.by} at {pause.paused_at.isoformat(timespec='seconds')}"
        if pause.drop:
            skipped = JobRun.skipped(
                id=self.parts.runs.new_id(),
                job=job,
                trigger=trigger,
                payload=valid.stored,
                instance=self.parts.instance,
                error=RunError(type="Skipped", message=f"{since}, its deliveries dropped"),
            )
            if not await self.parts.runs.insert(skipped, dedupe_key=dedupe_key):
                await self._refused(job, dedupe_key, "the same occurrence was delivered again")
            return
        await self.submit(
            job,
            trigger,
            event.data,
            dedupe_key=dedupe_key,
            valid=valid,
            held=Held(reason=since, place=event.sent_at() or utc_now()),
        )

    async def _attempt_unstored(
        self, job: Job, event: CloudEvent, trigger: RunTrigger, valid: "_Payload", dedupe_key: str
    ) -> DeliveryOutcome:
        running = self._attempting.get(dedupe_key)
        if running is None:
            if await self.parts.runs.has_occurrence(job=job.name, dedupe_key=dedupe_key):
                await self._refused(job, dedupe_key, "the same occurrence was delivered again")
                return DeliveryOutcome.SUCCESS
            running = self._attempting.get(dedupe_key)  # delivered again during the lookup
        if running is None:
            now = utc_now()
            run = JobRun.new(
                id=self.parts.runs.occurrence_id(
                    job=job.name, dedupe_key=dedupe_key, at=event.sent_at() or now
                ),
                job=job,
                trigger=trigger,
                at=now,
                payload=valid.stored,
                status=RunStatus.RUNNING,
                started_at=now,
                instance=self.parts.instance,
            )
            lag = event.seconds_since_sent(now)
            if lag is not None:
                self.executor.metrics.event_lag(topic=job.topic or "", seconds=lag)
            if self.journal is not None:
                self.journal.begun(
                    JournalEntry(
                        run_id=run.id,
                        job=job.name,
                        event_id=event.id,
                        topic=event.topic,
                        payload=valid.stored,
                        begun_at=now.isoformat(),
                        instance=self.parts.instance,
                    )
                )
            running = self.executor.start(
                run, payload=valid.model, storage=Storage.unstored(dedupe_key)
            )
            self._attempting[dedupe_key] = running
            running.add_done_callback(lambda _: self._attempt_over(dedupe_key, run.id))
        # Shielded, so that a dropped connection does not abandon the attempt halfway.
        recorded = await asyncio.shield(running)
        return DeliveryOutcome.SUCCESS if recorded else DeliveryOutcome.RETRY

    def _attempt_over(self, dedupe_key: str, run_id: str) -> None:
        self._attempting.pop(dedupe_key, None)
        if self.journal is not None:
            self.journal.ended(run_id)

    async def fire_tick(self, job: Job, fired_at: datetime) -> Submission:
        """One firing of a cron binding. Every instance's binding fires; the job's
        TickCoordinator actor grants the tick to one of them."""
        tick = job.schedule.tick_of(fired_at) if job.schedule else fired_at
        coordination = "the tick coordinator granted it"
        try:
            granted, holder = await self.parts.actors.claim_tick(
                job=job.name, tick=tick, instance=self.parts.instance
            )
        except ActorUnavailable as exc:
            coordination = f"the tick coordinator was unavailable ({exc})"
            logger.bind(job=job.name, tick=tick.isoformat(), error=str(exc)).warning(
                "tick coordinator unavailable: the unique index decides"
            )
        else:
            if not granted:
                logger.bind(job=job.name, tick=tick.isoformat(), holder=holder).debug(
                    "tick claimed by another instance"
                )
                return Submission(run=None, created=False, claimed_by=holder)
        trigger = RunTrigger(type="cron", tick=tick)
        dedupe_key = f"cron:{tick.isoformat()}"
        plan = await self._plan_tick(job)
        if plan.skip_reason is not None:
            return await self._skip_tick(job, trigger, dedupe_key, plan.skip_reason)
        return await self.submit(
            job,
            trigger,
            None,
            dedupe_key=dedupe_key,
            refusal_reason=f"a second run for this tick, though {coordination}",
            behind=plan.behind,
        )

    async def _plan_tick(self, job: Job) -> TickPlan:
        if job.overlap == "allow":
            return TickPlan()
        return plan_tick(job, await self.parts.runs.unfinished_of(job.name))

    async def _skip_tick(
        self, job: Job, trigger: RunTrigger, dedupe_key: str, reason: str
    ) -> Submission:
        """A tick (or a schedule's firing) its job's overlap policy skips, recorded as a
        cancelled run with the reason, under the occurrence's key."""
        skipped = JobRun.skipped(
            id=self.parts.runs.new_id(),
            job=job,
            trigger=trigger,
            payload=None,
            instance=self.parts.instance,
            error=RunError(type="OverlapSkipped", message=f"tick skipped: {reason}"),
        )
        created = await self.parts.runs.insert(skipped, dedupe_key=dedupe_key)
        logger.bind(job=job.name, occurrence=dedupe_key, reason=reason).info("tick skipped")
        return Submission(skipped if created else None, created=created)

    async def fire_schedule(
        self,
        job: Job,
        schedule: str,
        payload: Any,
        *,
        occurrence: datetime,
        missed: list[datetime] | None = None,
    ) -> Submission:
        """One firing of a Jobs API schedule, whose `occurrence` (the firing mapped onto the
        schedule's grid) names it: a redelivered firing finds the run of the first. `missed`:
        the occurrences a caught-up run stands for (app/dispatch/missed_ticks.py). A live
        firing follows its job's overlap policy, as a tick does."""
        trigger = RunTrigger(
            type="schedule", schedule=schedule, tick=occurrence, missed_ticks=missed
        )
        dedupe_key = f"schedule:{schedule}:{occurrence.isoformat()}"
        plan = await self._plan_tick(job) if missed is None else TickPlan()
        if plan.skip_reason is not None:
            return await self._skip_tick(job, trigger, dedupe_key, plan.skip_reason)
        return await self.submit(job, trigger, payload, dedupe_key=dedupe_key, behind=plan.behind)

    async def trigger(self, job: Job, payload: Any) -> Submission:
        return await self.submit(job, RunTrigger(type="manual"), payload)

    async def submit(
        self,
        job: Job,
        trigger: RunTrigger,
        payload: Any,
        *,
        dedupe_key: str | None = None,
        start: bool = True,
        refusal_reason: str = "the same occurrence was delivered again",
        valid: "_Payload | None" = None,
        parent_run_id: str | None = None,
        step: str | None = None,
        run_id: str | None = None,
        held: "Held | None" = None,
        behind: str | None = None,
    ) -> Submission:
        """Validates the payload (unless `valid` has it validated) and stores a new run (of
        `run_id` when given, else of a new id): claimed by this instance when it has room (and
        started, unless `start` is False), queued for the poller otherwise; `held`: queued, in
        its place, with the reason it waits; `behind`: the run it is the one run to wait
        behind (a tick of a `buffer_one` job), skipped if another took that place."""
        valid = valid or _validated(job, payload)
        sequence_key = (
            str(valid.stored.get(job.ordered_by)) if job.ordered_by and valid.stored else None
        )
        now = utc_now()
        claim = self.executor.has_capacity and sequence_key is None and held is None
        due = held.place if held else now + self._hold_for(sequence_key)
        run = JobRun.new(
            id=run_id or self.parts.runs.new_id(),
            job=job,
            trigger=trigger,
            at=now,
            payload=valid.stored,
            status=RunStatus.RUNNING if claim else RunStatus.PENDING,
            started_at=now if claim else None,
            instance=self.parts.instance if claim else None,
            next_attempt_at=None if claim else due,
            sequence_key=sequence_key,
            parent_run_id=parent_run_id,
            step=step,
            gate=job.gate_of(valid.stored) if job.gated else None,
            held_reason=held.reason if held else None,
        )
        lease = self.parts.settings.lease_until(now) if claim else None
        if not await self.parts.runs.insert(
            run, dedupe_key=dedupe_key, lease_until=lease, behind=behind
        ):
            if (
                behind is not None
                and dedupe_key is not None
                and not await self.parts.runs.has_occurrence(job=job.name, dedupe_key=dedupe_key)
            ):  # not the occurrence's key: the place behind `behind` is another run's
                return await self._skip_tick(
                    job, trigger, dedupe_key, already_waiting_behind(behind)
                )
            existing = await self._refused(job, dedupe_key or "", refusal_reason)
            return Submission(existing, created=False)
        if claim and start:
            self.executor.start(run, payload=valid.model)
        return Submission(run, created=True, payload=valid.model)

    def _hold_for(self, sequence_key: str | None) -> timedelta:
        """A sequenced run is handed to its key's actor by the instance that stored it; the
        poller leaves it alone for a lease's length, and takes it only if that instance died."""
        return timedelta(seconds=self.parts.settings.lease_seconds if sequence_key else 0)

    async def _refused(self, job: Job, dedupe_key: str, reason: str) -> JobRun:
        existing = await self.parts.runs.find_by_dedupe_key(job=job.name, dedupe_key=dedupe_key)
        assert existing is not None, "a duplicate key names an existing run"
        await self.parts.runs.note_refusal(
            job=job.name,
            dedupe_key=dedupe_key,
            refusal=Refusal(instance=self.parts.instance, at=utc_now(), reason=reason),
        )
        logger.bind(job=job.name, run_id=existing.id, dedupe_key=dedupe_key).info(
            "occurrence already has a run; not running it again"
        )
        return existing

    async def _record_invalid(
        self,
        job: Job,
        trigger: RunTrigger,
        payload: Any,
        invalid: PayloadInvalid,
        event_id: str,
    ) -> None:
        """A payload that can never be valid: a dead run at once, with the reason."""
        run, _ = await self._store_dead_event(
            job=job,
            trigger=trigger,
            payload=payload,
            error=RunError(type="ValidationError", message=str(invalid)),
        )
        logger.bind(job=job.name, run_id=run.id, event_id=event_id).warning(
            "invalid payload: dropped, and recorded as a dead run"
        )

    async def record_dead_letter(self, job: Job | None, letter: DeadLetter, *, pubsub: str) -> None:
        """A dead-lettered message as a dead run of the worker of its topic (or of
        `UNROUTABLE` when it names none), unless its event already has a run: an invalid
        payload the app dropped was recorded when it was dropped."""
        reason = (
            f"dead-lettered by daprd from topic {letter.topic!r}: the app answered DROP, or "
            "its delivery failed once daprd's retries were spent"
            if letter.readable
            else "dead-lettered by daprd: the message was not a CloudEvent daprd could read"
        )
        run, created = await self._store_dead_event(
            job=job or _Unroutable(),
            trigger=RunTrigger(type="event", event_id=letter.id, topic=letter.topic),
            payload=letter.data,
            error=RunError(type="DeadLettered", message=reason),
        )
        logger.bind(job=run.job, event_id=letter.id, pubsub=pubsub, recorded=created).warning(
            "dead letter received"
        )

    async def _store_dead_event(
        self, *, job: JobSpec, trigger: RunTrigger, payload: Any, error: RunError
    ) -> tuple[JobRun, bool]:
        """An event that will never run, stored as a dead run at once (its payload only in a
        form that may be written); False when its event has a run already."""
        now = utc_now()
        run = JobRun.new(
            id=self.parts.runs.new_id(),
            job=job,
            trigger=trigger,
            at=now,
            payload=payload_to_store(payload),
            status=RunStatus.DEAD,
            started_at=now,
            finished_at=now,
            duration_ms=0.0,
            instance=self.parts.instance,
            error=error,
        )
        created = await self.parts.runs.insert(run, dedupe_key=f"event:{trigger.event_id}")
        return run, created


def _validated(job: Job, payload: Any) -> _Payload:
    if job.payload_model is None:
        return _Payload(stored=payload, model=None)
    try:
        # No payload (a cron tick, a bare trigger) is the model's defaults.
        valid = job.payload_model.model_validate({} if payload is None else payload)
    except ValidationError as exc:
        raise PayloadInvalid.of(job.name, exc) from exc
    dumped = valid.model_dump(mode="json")
    problem = unsafe_part(dumped)
    if problem is not None:
        raise PayloadInvalid(job.name, f"it cannot be stored: {problem}")
    return _Payload(stored=dumped, model=valid)
