"""The dispatcher: every trigger becomes a run document, and every run is executed here.

Submitting records the run before anything else happens, so that from then on MongoDB holds it:
an event is acknowledged to Dapr only once its run is stored. Execution is an asyncio task per
attempt, under a lease that is renewed while the handler works. A failed attempt is retried with
backoff and jitter up to the job's maximum, then the run is dead. Retries and runs whose
instance died are picked up by the poller (`RunPoller`), on whichever instance claims them first.
"""

import asyncio
import contextlib
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loguru import logger
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import ValidationError

from app.core.clock import utc_now
from app.dapr.cloudevents import CloudEvent
from app.dapr.outcomes import DeliveryOutcome
from app.dispatch.context_factory import ContextFactory
from app.dispatch.errors import PayloadInvalid, RunNotActionable, UnknownJob
from app.models.runs import Attempt, JobRun, Progress, RunError, RunStatus, RunTrigger
from app.repositories.runs import RunRepository, UnknownRun
from app.workers.errors import GiveUp, LeaseLost, RetryLater, RunCancelled
from app.workers.registry import Registry, Worker


@dataclass(frozen=True)
class EngineSettings:
    lease_seconds: float = 15.0
    poll_interval_seconds: float = 0.5
    max_in_flight: int = 32
    shutdown_grace_seconds: float = 10.0


@dataclass(frozen=True)
class Submission:
    run: JobRun
    created: bool  # False: this occurrence had a run already (a redelivery, a second tick)


class Dispatcher:
    def __init__(
        self,
        *,
        registry: Registry,
        runs: RunRepository,
        contexts: ContextFactory,
        instance: str,
        engine: EngineSettings,
        tracer: trace.Tracer,
    ) -> None:
        self._registry = registry
        self._runs = runs
        self._contexts = contexts
        self._instance = instance
        self._engine = engine
        self._tracer = tracer
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancelled_by_operator: set[str] = set()
        self._limits = {w.name: asyncio.Semaphore(w.concurrency) for w in registry if w.concurrency}

    @property
    def instance(self) -> str:
        return self._instance

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def has_capacity(self) -> bool:
        return len(self._tasks) < self._engine.max_in_flight

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
        if submission.created and submission.run.status is RunStatus.RUNNING:
            # The first attempt runs while Dapr waits, which paces deliveries to the worker's
            # speed; shielded, so that a dropped connection does not abandon it halfway.
            await asyncio.shield(self._spawn(submission.run))
        return DeliveryOutcome.SUCCESS

    async def fire_tick(self, worker: Worker, fired_at: datetime) -> Submission:
        """One firing of a cron binding: one run per (job, tick), however often it arrives."""
        tick = worker.schedule.tick_of(fired_at) if worker.schedule else fired_at
        return await self.submit(
            worker, RunTrigger(type="cron", tick=tick), None, dedupe_key=f"cron:{tick.isoformat()}"
        )

    async def fire_schedule(self, worker: Worker, schedule: str, payload: Any) -> Submission:
        return await self.submit(worker, RunTrigger(type="schedule", schedule=schedule), payload)

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
    ) -> Submission:
        """Validates the payload and stores a new run, claimed by this instance when it has room
        (and then started, unless `start` is False), queued for the poller otherwise."""
        payload = self._validated(worker, payload)
        now = utc_now()
        claim = self.has_capacity
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
            payload=payload,
            next_attempt_at=None if claim else now,
        )
        lease = self._lease_until(now) if claim else None
        if not await self._runs.insert(run, dedupe_key=dedupe_key, lease_until=lease):
            existing = await self._runs.find_by_dedupe_key(
                job=worker.name, dedupe_key=dedupe_key or ""
            )
            assert existing is not None, "a duplicate key names an existing run"
            logger.bind(job=worker.name, run_id=existing.id, dedupe_key=dedupe_key).info(
                "occurrence already has a run; not running it again"
            )
            return Submission(existing, created=False)
        if claim and start:
            self._spawn(run)
        return Submission(run, created=True)

    # -- operator actions --------------------------------------------------------------------

    async def cancel(self, run_id: str) -> JobRun:
        now = utc_now()
        run = await self._runs.cancel_waiting(run_id=run_id, now=now)
        if run is not None:
            return run
        run = await self._runs.request_cancel(run_id=run_id)
        if run is None:
            current = await self._get(run_id)
            raise RunNotActionable(current, "cancel", "it has finished")
        task = self._tasks.get(run_id)
        if task is not None and run.kind != "data":
            # Data processors stop at their next chunk boundary; others are interrupted here.
            self._cancelled_by_operator.add(run_id)
            task.cancel()
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
        worker = self.worker(run.job)
        submission = await self.submit(
            worker, RunTrigger(type="manual", retry_of=run.id), run.payload
        )
        return submission.run

    async def requeue(self, run_id: str) -> JobRun:
        """Runs a dead run's payload again, as a new run; the dead one leaves the dead set."""
        run = await self._get(run_id)
        if run.status is not RunStatus.DEAD or run.requeued_as:
            raise RunNotActionable(run, "requeue", "it is not in the dead set")
        worker = self.worker(run.job)
        new_id = self._runs.new_id()
        if not await self._runs.mark_requeued(run_id=run_id, new_run_id=new_id):
            raise RunNotActionable(run, "requeue", "it was requeued already")
        now = utc_now()
        requeued = JobRun(
            id=new_id,
            job=worker.name,
            kind=worker.kind,
            status=RunStatus.PENDING,
            trigger=RunTrigger(type="requeue", requeued_from=run.id),
            max_attempts=worker.max_attempts,
            created_at=now,
            trace_id=_current_trace_id(),
            payload=run.payload,
            next_attempt_at=now,
        )
        await self._runs.insert(requeued)
        return requeued

    # -- execution ---------------------------------------------------------------------------

    def _spawn(self, run: JobRun) -> asyncio.Task[None]:
        task = asyncio.create_task(self._execute(run), name=f"run-{run.job}-{run.id}")
        self._tasks[run.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(run.id, None))
        return task

    def start_claimed(self, run: JobRun) -> None:
        """Starts a run the poller claimed for this instance."""
        self._spawn(run)

    async def _execute(self, run: JobRun) -> None:
        worker = self._registry.get(run.job)
        log = logger.bind(job=run.job, run_id=run.id, attempt=run.attempt, kind=run.kind)
        if worker is None:
            await self._finish(
                run,
                RunStatus.DEAD,
                started_at=utc_now(),
                clock=0.0,
                log=log,
                error=RunError(
                    type="UnknownJob", message=f"no worker named {run.job!r} is registered here"
                ),
            )
            return
        limit = self._limits.get(worker.name) or contextlib.nullcontext()
        async with limit:
            await self._attempt(worker, run, log)

    async def _attempt(self, worker: Worker, run: JobRun, log: Any) -> None:
        started_at = utc_now()
        lease = _Lease(self, run)
        context = self._contexts.build(worker, run, log=log, control=lease)
        keeper = asyncio.create_task(lease.keep(asyncio.current_task()))
        clock = time.perf_counter()
        with self._tracer.start_as_current_span(
            f"run {worker.name}",
            kind=SpanKind.CONSUMER,
            attributes={"job": worker.name, "run.id": run.id, "run.attempt": run.attempt},
        ) as span:
            try:
                payload = _payload_for(worker, run.payload)
                call = (
                    worker.handler(payload, context)
                    if worker.payload_model
                    else worker.handler(context)
                )
                result = await call
            except RunCancelled as exc:
                await self._finish(
                    run,
                    RunStatus.CANCELLED,
                    started_at=started_at,
                    clock=clock,
                    log=log,
                    error=_error(exc, tb=False),
                )
            except LeaseLost:
                log.warning("lease lost: another instance has taken this run over; stopping")
            except asyncio.CancelledError:
                if run.id in self._cancelled_by_operator:
                    self._cancelled_by_operator.discard(run.id)
                    await self._finish(
                        run,
                        RunStatus.CANCELLED,
                        started_at=started_at,
                        clock=clock,
                        log=log,
                        error=RunError(type="Cancelled", message="cancelled by an operator"),
                    )
                elif lease.lost:
                    log.warning("lease lost: another instance has taken this run over; stopped")
                else:
                    # Shutting down: hand the run back so that an instance takes it over.
                    with contextlib.suppress(Exception):
                        await self._runs.release(
                            run_id=run.id, instance=self._instance, now=utc_now()
                        )
                    log.info("shutting down: run handed back to the queue")
                    raise
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR))
                await self._fail(worker, run, exc, started_at=started_at, clock=clock, log=log)
            else:
                await self._finish(
                    run,
                    RunStatus.SUCCEEDED,
                    started_at=started_at,
                    clock=clock,
                    log=log,
                    result=result,
                )
            finally:
                keeper.cancel()

    async def _fail(
        self,
        worker: Worker,
        run: JobRun,
        exc: Exception,
        *,
        started_at: datetime,
        clock: float,
        log: Any,
    ) -> None:
        error = _error(exc)
        gives_up = isinstance(exc, GiveUp) or worker.retry.gives_up_after(run.attempt)
        if gives_up:
            log.bind(error=error.message).error("run failed for good: now in the dead set")
            await self._finish(
                run, RunStatus.DEAD, started_at=started_at, clock=clock, log=log, error=error
            )
            return
        delay = (
            exc.defer_seconds
            if isinstance(exc, RetryLater) and exc.defer_seconds is not None
            else worker.retry.delay_after(run.attempt)
        )
        next_at = utc_now() + timedelta(seconds=delay)
        log.bind(error=error.message, retry_in_s=round(delay, 2)).warning(
            "attempt failed; will retry"
        )
        await self._finish(
            run,
            RunStatus.FAILED,
            started_at=started_at,
            clock=clock,
            log=log,
            error=error,
            next_attempt_at=next_at,
        )

    async def _finish(
        self,
        run: JobRun,
        status: RunStatus,
        *,
        started_at: datetime,
        clock: float,
        log: Any,
        result: dict[str, Any] | None = None,
        error: RunError | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        now = utc_now()
        duration_ms = (time.perf_counter() - clock) * 1000 if clock else 0.0
        attempt = Attempt(
            attempt=run.attempt,
            instance=self._instance,
            started_at=started_at,
            finished_at=now,
            status=status,
            error=error,
        )
        recorded = await self._runs.finish_attempt(
            run_id=run.id,
            instance=self._instance,
            status=status,
            attempt=attempt,
            finished_at=None if status is RunStatus.FAILED else now,
            duration_ms=duration_ms,
            result=result,
            error=error,
            next_attempt_at=next_attempt_at,
        )
        if not recorded:
            log.warning("run was taken over by another instance; its outcome here is discarded")
            return
        log.bind(status=status.value, duration_ms=round(duration_ms, 1)).info("run finished")

    async def _record_invalid(
        self,
        worker: Worker,
        trigger: RunTrigger,
        payload: Any,
        invalid: PayloadInvalid,
        event_id: str,
    ) -> None:
        """A payload that can never be valid: a dead run at once, with the reason."""
        now = utc_now()
        run = JobRun(
            id=self._runs.new_id(),
            job=worker.name,
            kind=worker.kind,
            status=RunStatus.DEAD,
            trigger=trigger,
            max_attempts=worker.max_attempts,
            created_at=now,
            started_at=now,
            finished_at=now,
            duration_ms=0.0,
            instance=self._instance,
            error=RunError(type="ValidationError", message=str(invalid)),
            trace_id=_current_trace_id(),
            payload=payload,
        )
        await self._runs.insert(run, dedupe_key=f"event:{event_id}")
        logger.bind(job=worker.name, run_id=run.id, event_id=event_id).warning(
            "invalid payload: dropped, and recorded as a dead run"
        )

    # -- leases and shutdown ---------------------------------------------------------------

    def _lease_until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self._engine.lease_seconds)

    async def renew(
        self, run: JobRun, progress: Progress | None, checkpoint: Any, *, save_checkpoint: bool
    ) -> bool | None:
        return await self._runs.renew_lease(
            run_id=run.id,
            instance=self._instance,
            lease_until=self._lease_until(utc_now()),
            progress=progress,
            checkpoint=checkpoint,
            save_checkpoint=save_checkpoint,
        )

    @property
    def lease_renewal_interval(self) -> float:
        return self._engine.lease_seconds / 3

    async def drain(self) -> None:
        """Graceful shutdown: let in-flight runs finish within the grace period, then hand the
        rest back to the queue for another instance (or this one, restarted)."""
        if not self._tasks:
            return
        pending = set(self._tasks.values())
        logger.bind(in_flight=len(pending)).info("draining in-flight runs")
        _, still_running = await asyncio.wait(pending, timeout=self._engine.shutdown_grace_seconds)
        for task in still_running:
            task.cancel()
        await asyncio.gather(*still_running, return_exceptions=True)

    def _validated(self, worker: Worker, payload: Any) -> Any:
        if worker.payload_model is None:
            return payload
        try:
            # No payload (a cron tick, a bare trigger) is the model's defaults.
            valid = worker.payload_model.model_validate({} if payload is None else payload)
            return valid.model_dump(mode="json")
        except ValidationError as exc:
            raise PayloadInvalid(worker.name, exc) from exc

    async def _get(self, run_id: str) -> JobRun:
        run = await self._runs.get(run_id)
        if run is None:
            raise UnknownRun(run_id)
        return run


class _Lease:
    """Keeps a run's lease alive while its handler works, and carries its progress writes."""

    def __init__(self, dispatcher: Dispatcher, run: JobRun) -> None:
        self._dispatcher = dispatcher
        self._run = run
        self.lost = False

    async def save(self, progress: Progress, checkpoint: Any, *, save_checkpoint: bool) -> bool:
        cancel = await self._dispatcher.renew(
            self._run, progress, checkpoint, save_checkpoint=save_checkpoint
        )
        if cancel is None:
            self.lost = True
            raise LeaseLost(self._run.id)
        return cancel

    async def keep(self, worker_task: "asyncio.Task[Any] | None") -> None:
        while True:
            await asyncio.sleep(self._dispatcher.lease_renewal_interval)
            try:
                owned = await self._dispatcher.renew(self._run, None, None, save_checkpoint=False)
            except Exception as exc:  # the database is away: keep trying while the lease lasts
                logger.bind(run_id=self._run.id, error=repr(exc)).warning("lease renewal failed")
                continue
            if owned is None:
                self.lost = True
                if worker_task is not None:
                    worker_task.cancel()
                return


def _payload_for(worker: Worker, payload: Any) -> Any:
    if worker.payload_model is None:
        return None
    return worker.payload_model.model_validate({} if payload is None else payload)


def _error(exc: BaseException, *, tb: bool = True) -> RunError:
    return RunError(
        type=type(exc).__name__,
        message=str(exc) or type(exc).__name__,
        traceback="".join(traceback.format_exception(exc)) if tb else None,
    )


def _current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
