"""The dispatcher: every trigger becomes a run document, before anything else happens.

From then on MongoDB holds the run: an event is acknowledged to Dapr only once its run is
stored. Across instances, the actors decide first (one claim per cron tick, one run at a time
per key); MongoDB's unique index on the occurrence stays the second line of defence, and a run
notes each second run it refused, and why. Execution is the executor's.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loguru import logger
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import ValidationError

from app.actors.client import ActorClient, ActorUnavailable
from app.core.clock import utc_now
from app.core.config import WorkerSection
from app.dapr.cloudevents import CloudEvent
from app.dapr.dead_letters import DeadLetter
from app.dapr.outcomes import DeliveryOutcome
from app.dispatch.errors import PayloadInvalid, RunNotActionable, UnknownJob
from app.dispatch.executor import RunExecutor
from app.dispatch.storable import payload_to_store, unsafe_part
from app.models.runs import JobRun, Refusal, RunError, RunStatus, RunTrigger, WorkerKind
from app.repositories.runs import RunRepository, UnknownRun
from app.workers.registry import Registry, Worker

# The job name of dead letters whose topic has no worker here.
UNROUTABLE = "unroutable"

# How long an event's delivery may wait for its key's earlier runs (the actor's queue).
SEQUENCE_TIMEOUT_SECONDS = 55.0


@dataclass(frozen=True)
class Submission:
    run: JobRun | None  # None: another instance claimed this occurrence
    created: bool  # False: this occurrence had a run already (a redelivery, a second tick)
    claimed_by: str | None = None


class Dispatcher:
    def __init__(
        self,
        *,
        registry: Registry,
        runs: RunRepository,
        executor: RunExecutor,
        actors: ActorClient,
        instance: str,
        engine: WorkerSection,
    ) -> None:
        self._registry = registry
        self._runs = runs
        self._executor = executor
        self._actors = actors
        self._instance = instance
        self._engine = engine
        self._sequencing: set[str] = set()  # runs handed to their key's actor, not back yet

    @property
    def instance(self) -> str:
        return self._instance

    @property
    def executor(self) -> RunExecutor:
        return self._executor

    def worker(self, name: str) -> Worker:
        worker = self._registry.get(name)
        if worker is None:
            raise UnknownJob(name)
        return worker

    # -- triggers ----------------------------------------------------------------------------

    async def deliver_event(self, worker: Worker, event: CloudEvent) -> DeliveryOutcome:
        """Runs `worker` on one CloudEvent and says what Dapr should do with the message.

        SUCCESS once the run is stored (MongoDB holds it from then on, and retries it itself);
        DROP for a payload that can never be valid; an exception (the database is away) is the
        route's RETRY, so that Dapr keeps the message.
        """
        trigger = RunTrigger(type="event", event_id=event.id, topic=event.topic)
        try:
            submission = await self.submit(
                worker, trigger, event.data, dedupe_key=f"event:{event.id}", start=False
            )
        except PayloadInvalid as invalid:
            await self._record_invalid(worker, trigger, event.data, invalid, event.id)
            return DeliveryOutcome.DROP
        run = submission.run
        if not submission.created or run is None:
            return DeliveryOutcome.SUCCESS
        lag = event.seconds_since_sent(run.created_at)
        if lag is not None:
            self._executor.metrics.event_lag(topic=worker.topic or "", seconds=lag)
        if run.sequence_key is not None:
            await self._run_in_sequence(run, first_hand=True)
        elif run.status is RunStatus.RUNNING:
            # The first attempt runs while Dapr waits, which paces deliveries to the worker's
            # speed; shielded, so that a dropped connection does not abandon it halfway.
            await asyncio.shield(self._executor.start(run))
        return DeliveryOutcome.SUCCESS

    async def fire_tick(self, worker: Worker, fired_at: datetime) -> Submission:
        """One firing of a cron binding. Every instance's binding fires; the job's
        TickCoordinator actor grants the tick to one of them."""
        tick = worker.schedule.tick_of(fired_at) if worker.schedule else fired_at
        coordination = "the tick coordinator granted it"
        try:
            granted, holder = await self._actors.claim_tick(
                job=worker.name, tick=tick, instance=self._instance
            )
        except ActorUnavailable as exc:
            coordination = f"the tick coordinator was unavailable ({exc})"
            logger.bind(job=worker.name, tick=tick.isoformat(), error=str(exc)).warning(
                "tick coordinator unavailable: the unique index decides"
            )
        else:
            if not granted:
                logger.bind(job=worker.name, tick=tick.isoformat(), holder=holder).debug(
                    "tick claimed by another instance"
                )
                return Submission(run=None, created=False, claimed_by=holder)
        return await self.submit(
            worker,
            RunTrigger(type="cron", tick=tick),
            None,
            dedupe_key=f"cron:{tick.isoformat()}",
            refusal_reason=f"a second run for this tick, though {coordination}",
        )

    async def fire_schedule(
        self, worker: Worker, schedule: str, payload: Any, *, occurrence: datetime
    ) -> Submission:
        """One firing of a Jobs API schedule, whose `occurrence` (the firing mapped onto the
        schedule's grid) names it: a redelivered firing finds the run of the first."""
        return await self.submit(
            worker,
            RunTrigger(type="schedule", schedule=schedule, tick=occurrence),
            payload,
            dedupe_key=f"schedule:{schedule}:{occurrence.isoformat()}",
        )

    async def trigger(self, worker: Worker, payload: Any) -> Submission:
        return await self.submit(worker, RunTrigger(type="manual"), payload)

    async def submit(
        self,
        worker: Worker,
        trigger: RunTrigger,
        payload: Any,
        *,
        dedupe_key: str | None = None,
        start: bool = True,
        refusal_reason: str = "the same occurrence was delivered again",
    ) -> Submission:
        """Validates the payload and stores a new run: claimed by this instance when it has
        room (and started, unless `start` is False), queued for the poller otherwise."""
        payload = self._validated(worker, payload)
        sequence_key = (
            str(payload.get(worker.ordered_by)) if worker.ordered_by and payload else None
        )
        now = utc_now()
        claim = self._executor.has_capacity and sequence_key is None
        run = JobRun(
            id=self._runs.new_id(),
            job=worker.name,
            kind=worker.kind,
            status=RunStatus.RUNNING if claim else RunStatus.PENDING,
            trigger=trigger,
            max_attempts=worker.max_attempts,
            created_at=now,
            started_at=now if claim else None,
            instance=self._instance if claim else None,
            trace_id=_current_trace_id(),
            traceparent=_current_traceparent(),
            payload=payload,
            next_attempt_at=None if claim else now + self._hold_for(sequence_key),
            sequence_key=sequence_key,
        )
        lease = self._engine.lease_until(now) if claim else None
        if not await self._runs.insert(run, dedupe_key=dedupe_key, lease_until=lease):
            return await self._refused(worker, dedupe_key or "", refusal_reason)
        if claim and start:
            self._executor.start(run)
        return Submission(run, created=True)

    def _hold_for(self, sequence_key: str | None) -> timedelta:
        """A sequenced run is handed to its key's actor by the instance that stored it; the
        poller leaves it alone for a lease's length, and takes it only if that instance died."""
        return timedelta(seconds=self._engine.lease_seconds if sequence_key else 0)

    async def _refused(self, worker: Worker, dedupe_key: str, reason: str) -> Submission:
        existing = await self._runs.find_by_dedupe_key(job=worker.name, dedupe_key=dedupe_key)
        assert existing is not None, "a duplicate key names an existing run"
        await self._runs.note_refusal(
            job=worker.name,
            dedupe_key=dedupe_key,
            refusal=Refusal(instance=self._instance, at=utc_now(), reason=reason),
        )
        logger.bind(job=worker.name, run_id=existing.id, dedupe_key=dedupe_key).info(
            "occurrence already has a run; not running it again"
        )
        return Submission(existing, created=False)

    # -- key sequences -----------------------------------------------------------------------

    async def _run_in_sequence(self, run: JobRun, *, first_hand: bool = False) -> None:
        """Hands the run to its key's actor, which executes it on the instance hosting it, after
        the key's earlier runs. When the actor does not answer (its turn did not come in time,
        or the sidecar is away), the run stays queued behind its key and is handed to the actor
        again after a lease's length: it never runs out of its key's order."""
        assert run.sequence_key is not None
        try:
            await self._actors.run_in_sequence(
                job=run.job,
                key=run.sequence_key,
                run_id=run.id,
                wait_seconds=SEQUENCE_TIMEOUT_SECONDS,
            )
        except ActorUnavailable as exc:
            retry_at = self._engine.lease_until(utc_now())
            held = await self._runs.hold(run_id=run.id, until=retry_at)
            logger.bind(job=run.job, run_id=run.id, error=str(exc), held=held).warning(
                "key sequencer did not answer: the run waits behind its key"
            )
            if first_hand and held:
                await self._runs.note_refusal(
                    job=run.job,
                    dedupe_key=f"event:{run.trigger.event_id}",
                    refusal=Refusal(
                        instance=self._instance,
                        at=utc_now(),
                        reason="not run out of its key's order: the key actor did not answer "
                        f"({exc}); queued behind its key and handed to the actor again",
                    ),
                )

    async def run_here(self, run_id: str) -> str:
        """Claims one due run for this instance and executes it to the end of the attempt;
        returns its status then. The KeySequencer actor calls this within its turn."""
        now = utc_now()
        run = await self._runs.claim_due(
            instance=self._instance,
            now=now,
            lease_until=self._engine.lease_until(now),
            jobs=[w.name for w in self._registry],
            run_id=run_id,
        )
        if run is not None:
            await asyncio.shield(self._executor.start(run))
        current = await self._runs.get(run_id)
        return current.status.value if current else "unknown"

    async def resume_sequences(self, *, limit: int) -> int:
        """Hands the due runs of key sequences (retries, orphans) to their actors."""
        due = await self._runs.due_in_sequence(
            now=utc_now(), jobs=[w.name for w in self._registry], limit=limit
        )
        handed = 0
        for run in due:
            if run.id in self._sequencing:
                continue
            self._sequencing.add(run.id)
            task = asyncio.create_task(self._run_in_sequence(run), name=f"sequence-{run.id}")
            task.add_done_callback(self._sequence_done(run.id))
            handed += 1
        return handed

    def _sequence_done(self, run_id: str) -> "Callable[[asyncio.Task[None]], None]":
        def done(_: "asyncio.Task[None]") -> None:
            self._sequencing.discard(run_id)

        return done

    # -- operator actions --------------------------------------------------------------------

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
        submission = await self.submit(
            self.worker(run.job), RunTrigger(type="manual", retry_of=run.id), run.payload
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
        worker = self.worker(run.job)
        now = utc_now()
        requeued = JobRun(
            id=self._runs.new_id(),
            job=worker.name,
            kind=worker.kind,
            status=RunStatus.PENDING,
            trigger=RunTrigger(type="requeue", requeued_from=run.id),
            max_attempts=worker.max_attempts,
            created_at=now,
            trace_id=_current_trace_id(),
            traceparent=_current_traceparent(),
            payload=run.payload,
            next_attempt_at=now,
            sequence_key=run.sequence_key,
        )
        dedupe_key = f"requeue:{run.id}"
        if not await self._runs.insert(requeued, dedupe_key=dedupe_key):
            existing = await self._runs.find_by_dedupe_key(job=worker.name, dedupe_key=dedupe_key)
            assert existing is not None, "a duplicate key names an existing run"
            requeued = existing
        if not await self._runs.mark_requeued(run_id=run_id, new_run_id=requeued.id):
            raise RunNotActionable(run, "requeue", "it was requeued already")
        return requeued

    # -- helpers -----------------------------------------------------------------------------

    async def _record_invalid(
        self,
        worker: Worker,
        trigger: RunTrigger,
        payload: Any,
        invalid: PayloadInvalid,
        event_id: str,
    ) -> None:
        """A payload that can never be valid: a dead run at once, with the reason."""
        run, _ = await self._store_dead_event(
            job=worker.name,
            kind=worker.kind,
            max_attempts=worker.max_attempts,
            trigger=trigger,
            payload=payload,
            error=RunError(type="ValidationError", message=str(invalid)),
        )
        logger.bind(job=worker.name, run_id=run.id, event_id=event_id).warning(
            "invalid payload: dropped, and recorded as a dead run"
        )

    async def record_dead_letter(
        self, worker: Worker | None, letter: DeadLetter, *, pubsub: str
    ) -> None:
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
            job=worker.name if worker else UNROUTABLE,
            kind=worker.kind if worker else "event",
            max_attempts=worker.max_attempts if worker else 1,
            trigger=RunTrigger(type="event", event_id=letter.id, topic=letter.topic),
            payload=letter.data,
            error=RunError(type="DeadLettered", message=reason),
        )
        logger.bind(job=run.job, event_id=letter.id, pubsub=pubsub, recorded=created).warning(
            "dead letter received"
        )

    async def _store_dead_event(
        self,
        *,
        job: str,
        kind: WorkerKind,
        max_attempts: int,
        trigger: RunTrigger,
        payload: Any,
        error: RunError,
    ) -> tuple[JobRun, bool]:
        """An event that will never run, stored as a dead run at once (its payload only in a
        form that may be written); False when its event has a run already."""
        now = utc_now()
        run = JobRun(
            id=self._runs.new_id(),
            job=job,
            kind=kind,
            status=RunStatus.DEAD,
            trigger=trigger,
            max_attempts=max_attempts,
            created_at=now,
            started_at=now,
            finished_at=now,
            duration_ms=0.0,
            instance=self._instance,
            error=error,
            trace_id=_current_trace_id(),
            traceparent=_current_traceparent(),
            payload=payload_to_store(payload),
        )
        created = await self._runs.insert(run, dedupe_key=f"event:{trigger.event_id}")
        return run, created

    def _validated(self, worker: Worker, payload: Any) -> Any:
        if worker.payload_model is None:
            return payload
        try:
            # No payload (a cron tick, a bare trigger) is the model's defaults.
            valid = worker.payload_model.model_validate({} if payload is None else payload)
        except ValidationError as exc:
            raise PayloadInvalid.of(worker.name, exc) from exc
        dumped = valid.model_dump(mode="json")
        problem = unsafe_part(dumped)
        if problem is not None:
            raise PayloadInvalid(worker.name, f"it cannot be stored: {problem}")
        return dumped

    async def _get(self, run_id: str) -> JobRun:
        run = await self._runs.get(run_id)
        if run is None:
            raise UnknownRun(run_id)
        return run


def _current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


def _current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
