"""The executor: runs one attempt of a run this instance has claimed, and records its outcome.

On the model of arq's worker: the lease is kept from the claim on, through the wait for the
job's concurrency slot; the handler runs as a task of its own, and that task is the only thing
ever cancelled (by an operator's cancel, a lost lease, a timeout or a shutdown, all told through
the run's `Flight`); the outcome write is shielded and retried. A failed attempt is retried
with backoff and jitter up to the job's maximum, then the run is dead. Every write that ends an
attempt is conditional on this instance still owning the run.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from loguru import logger
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import BaseModel
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from app.core.clock import utc_now
from app.dispatch.batches import BatchCalls
from app.dispatch.context_factory import ContextFactory
from app.dispatch.engine import EngineParts
from app.dispatch.flight import Flight, StopReason, Storage
from app.dispatch.gates import Passage, RunGates
from app.dispatch.late_task import LateTask
from app.dispatch.lease import RunLeaseKeeper
from app.dispatch.lifecycle import Outcome, attempt_outcome, stopped_outcome
from app.dispatch.sent_again import note_if_sent_again
from app.dispatch.transactions import RunTransactions
from app.dispatch.workflow_driver import WorkflowDriver
from app.models.runs import Attempt, JobRun, RunError, RunStatus
from app.observability.metrics import RunMetrics
from app.observability.tally import FinishedAttempt
from app.workers.context import JobContext
from app.workers.errors import GiveUp
from app.workers.registry import Job

# How long a shutdown waits for handlers it cancelled to unwind.
_UNWIND_SECONDS = 5.0
# A run its flow gate holds back for at least this long is written as due only then.
_WRITTEN_WAIT = timedelta(seconds=1)


class RunExecutor:
    def __init__(
        self,
        *,
        parts: EngineParts,
        contexts: ContextFactory,
        tracer: trace.Tracer,
        metrics: RunMetrics,
        workflows: WorkflowDriver | None = None,
        transactions: RunTransactions | None = None,
    ) -> None:
        self._parts = parts
        self._workflows = workflows
        self._transactions = transactions
        self._contexts = contexts
        self._tracer = tracer
        self._tracing = not isinstance(tracer, trace.NoOpTracer)
        self._metrics = metrics
        self._tasks: dict[str, asyncio.Task[bool]] = {}
        self._driving: set[str] = set()
        """Workflow runs in flight: each waits for its instance, whose steps are runs that need
        slots of their own, so they do not count against `max_in_flight`."""
        self._flights: dict[str, Flight] = {}
        self._limits = {
            w.name: asyncio.Semaphore(w.concurrency) for w in parts.registry if w.concurrency
        }
        self._batches = BatchCalls()
        self._gates = RunGates(parts)

    def closed_gates(self) -> list[str]:
        """The flow gates found full here lately: the poller leaves their runs alone."""
        return self._gates.closed()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def metrics(self) -> RunMetrics:
        return self._metrics

    @property
    def has_capacity(self) -> bool:
        working = len(self._tasks) - len(self._driving)
        return working < self._parts.settings.max_in_flight

    def start(
        self, run: JobRun, *, payload: BaseModel | None = None, storage: Storage | None = None
    ) -> asyncio.Task[bool]:
        """Starts an attempt of a run this instance has claimed; `payload`: the run's payload
        already validated (by the intake), else validated from the run; `storage`: for a run
        not stored yet (a delivered event's first attempt). The task answers whether the
        occurrence has a run in MongoDB when the attempt is over: False only for a run never
        stored, whose outcome could not be written (its delivery must be retried)."""
        task = asyncio.create_task(
            self._execute(run, payload, storage or Storage()), name=f"run-{run.job}-{run.id}"
        )
        self._tasks[run.id] = task
        if run.kind == "workflow":
            self._driving.add(run.id)
        task.add_done_callback(lambda _: self._finished(run.id))
        return task

    def _finished(self, run_id: str) -> None:
        self._tasks.pop(run_id, None)
        self._driving.discard(run_id)

    def attempt_of(self, run_id: str) -> "asyncio.Task[bool] | None":
        """The attempt of that run in flight here, if any."""
        return self._tasks.get(run_id)

    def interrupt(self, run: JobRun) -> bool:
        """Stops a run executing here, wherever it is (waiting for its slot or in its handler).
        A data processor is left to stop at its next chunk boundary."""
        flight = self._flights.get(run.id)
        if flight is None or run.kind == "data":
            return False
        flight.stop(StopReason.CANCELLED)
        return True

    async def drain(self) -> None:
        """Graceful shutdown: in-flight runs may finish within the grace period; the rest, those
        waiting for a slot included, are handed back to the queue for another instance."""
        if not self._tasks:
            return
        pending = set(self._tasks.values())
        logger.bind(in_flight=len(pending)).info("draining in-flight runs")
        _, still_running = await asyncio.wait(
            pending, timeout=self._parts.settings.shutdown_grace_seconds
        )
        for flight in list(self._flights.values()):
            flight.stop(StopReason.DRAINING)
        if still_running:
            await asyncio.wait(still_running, timeout=_UNWIND_SECONDS + 5)

    async def _execute(self, run: JobRun, payload: BaseModel | None, storage: Storage) -> bool:
        log = logger.bind(job=run.job, run_id=run.id, attempt=run.attempt, kind=run.kind)
        job = self._parts.registry.get(run.job)
        if job is None:
            error = RunError(
                type="UnknownJob", message=f"no job named {run.job!r} is registered here"
            )
            unknown = Flight(run=run, timeout_seconds=None, storage=storage)
            outcome = Outcome(RunStatus.DEAD, error=error)
            await self._record(unknown, outcome, utc_now(), 0.0, log)
            return storage.recorded
        flight = Flight(run=run, timeout_seconds=job.timeout_seconds, storage=storage)
        self._flights[run.id] = flight
        lease = RunLeaseKeeper(run=run, parts=self._parts, flight=flight)
        # The keeper's task is made only for a run that lasts: most end before its first renewal.
        keeper = LateTask(lease.first_renewal_after, lease.keep, name=f"lease-{run.id}")
        try:
            holder = await lease.acquire()
            if holder is not None:
                await self._hand_over(run, holder, log)
                return storage.recorded
            semaphore = self._limits.get(job.name)
            if semaphore is not None and not await _take_slot(semaphore, flight):
                await self._stopped_before_start(flight, log)
                return storage.recorded
            slot = _Slot(semaphore)
            try:
                if job.gated:
                    await self._attempt_through_gate(
                        job, run, flight, lease, log, slot=slot, payload=payload
                    )
                else:
                    await self._attempt(job, run, flight, lease, log, slot=slot, payload=payload)
            finally:
                slot.release()
        finally:
            await keeper.cancel()
            self._flights.pop(run.id, None)
            await lease.release()
        return storage.recorded

    async def _attempt_through_gate(
        self,
        job: Job,
        run: JobRun,
        flight: Flight,
        lease: RunLeaseKeeper,
        log: Any,
        *,
        slot: "_Slot",
        payload: BaseModel | None,
    ) -> None:
        """The attempt of a run whose job has limits across instances, if its gate lets it
        through now; else the run waits again, with the gate's reason."""
        assert flight.storage.stored, "a gated job's runs are stored before they start"
        passage = await self._gates.enter(job, run)
        if not passage.granted:
            await self._hold_back(run, passage, log)
            return
        lease.renew_place = partial(self._gates.renew, job, run)
        try:
            await self._attempt(job, run, flight, lease, log, slot=slot, payload=payload)
        finally:
            await self._gates.leave(job, run)

    async def _hold_back(self, run: JobRun, passage: Passage, log: Any) -> None:
        now = utc_now()
        # A first attempt keeps its place among the runs that wait: the time it came. A short
        # wait is left to the gates' memory of full gates; a long one (a rate limit's) is
        # written, so that no instance asks in vain meanwhile.
        place = run.created_at if not run.attempts else now
        wait = timedelta(seconds=passage.retry_after_seconds)
        until = place if wait < _WRITTEN_WAIT else max(place, now + wait)
        try:
            await self._parts.runs.hold_back(
                run_id=run.id,
                instance=self._parts.instance,
                until=until,
                reason=passage.reason,
                unstarted=not run.attempts,
            )
        except Exception as exc:  # its lease runs out and the poller takes it again
            log.bind(error=repr(exc)).warning("held-back run not written back; its lease ends it")
            return
        log.bind(reason=passage.reason).debug("run held back by its flow gate")

    async def _attempt(
        self,
        job: Job,
        run: JobRun,
        flight: Flight,
        lease: RunLeaseKeeper,
        log: Any,
        *,
        slot: "_Slot",
        payload: BaseModel | None,
    ) -> None:
        started_at = utc_now()
        clock = time.perf_counter()
        context = self._contexts.build(job, run, log=log, control=lease)
        with self._run_span(job, run) as span:
            flight.start_clock()
            handler = asyncio.create_task(
                self._invoke(job, run, context, payload), name=f"handler-{run.id}"
            )
            timed_out = await _wait_for_handler(handler, flight)
            if flight.reason is not None or timed_out:
                handler.cancel()
                await asyncio.wait({handler}, timeout=_UNWIND_SECONDS)
                if flight.reason is StopReason.CANCELLED and job.kind == "workflow":
                    await self._terminate_workflow(run, log)
            # The handler is over: the next run's may start while this one's outcome is written.
            slot.release()
            if handler.done() and not handler.cancelled() and handler.exception() is not None:
                span.record_exception(handler.exception())  # type: ignore[arg-type]
            outcome = attempt_outcome(job, run, handler, flight, timed_out=timed_out)
            if outcome is None:
                return
            if outcome.error is not None and outcome.status is not RunStatus.CANCELLED:
                span.set_status(Status(StatusCode.ERROR, outcome.error.message))
            await self._record(flight, outcome, started_at, clock, log)

    def _run_span(self, job: Job, run: JobRun) -> AbstractContextManager[trace.Span]:
        if not self._tracing:  # no exporter: a span nobody reads costs an event ~2% of its CPU
            return nullcontext(trace.INVALID_SPAN)
        return self._tracer.start_as_current_span(
            f"run {job.name}",
            context=_parent_context(run),
            kind=SpanKind.CONSUMER,
            attributes={"job": job.name, "run.id": run.id, "run.attempt": run.attempt},
        )

    async def _invoke(
        self, job: Job, run: JobRun, context: JobContext, payload: BaseModel | None
    ) -> Any:
        if job.kind == "workflow":
            if self._workflows is None:
                raise GiveUp("workflows need Dapr's workflow runtime: Dapr:HostActors is off")
            return await self._workflows.drive(job, run, payload)
        if job.batch_size is not None:
            return await self._batches.handle(job, _validated(job, run, payload), context)
        if job.payload_model is None:
            call: Callable[[], Awaitable[Any]] = partial(job.handler, context)
        else:
            call = partial(job.handler, _validated(job, run, payload), context)
        if job.transactional:
            assert self._transactions is not None, "start-up makes them for transactional jobs"
            return await self._transactions.apply(run, call)
        return await call()

    async def _terminate_workflow(self, run: JobRun, log: Any) -> None:
        assert self._workflows is not None
        try:
            await self._workflows.terminate(run.id)
        except Exception as exc:  # the run is cancelled all the same; its instance may linger
            log.bind(error=str(exc)[:300]).warning("could not terminate the workflow instance")

    async def _record(
        self, flight: Flight, outcome: Outcome, started_at: datetime, clock: float, log: Any
    ) -> None:
        """Writes the outcome, shielded from cancellation and retried while the database is
        away (for as long as the lease lasts: after that, the run is another instance's)."""
        run = flight.run
        duration_ms = (time.perf_counter() - clock) * 1000 if clock else 0.0
        write = asyncio.ensure_future(self._write_outcome(flight, outcome, started_at, duration_ms))
        try:
            recorded = await asyncio.shield(write)
        except asyncio.CancelledError:
            await write
            raise
        if not recorded:
            log.warning("run was taken over by another instance; its outcome here is discarded")
            return
        if outcome.status is RunStatus.PENDING:
            log.info("shutting down: run handed back to the queue")
            return
        wait_ms = (started_at - run.created_at).total_seconds() * 1000 if run.attempt == 1 else None
        self._metrics.attempt_finished(
            FinishedAttempt(run.job, run.kind, outcome.status, duration_ms, wait_ms, utc_now())
        )
        # DEBUG: a line per run would be a line per event; failures log at WARNING and above.
        log.bind(status=outcome.status.value, duration_ms=round(duration_ms, 1)).debug(
            "run finished"
        )

    async def _write_outcome(
        self, flight: Flight, outcome: Outcome, started_at: datetime, duration_ms: float
    ) -> bool:
        try:  # the first try without the retry machinery: it is what almost every write needs
            async with flight.storage.lock:
                return await self._write_once(flight, outcome, started_at, duration_ms)
        except Exception as exc:
            logger.bind(run_id=flight.run.id, error=repr(exc)).warning(
                "outcome write failed; retrying"
            )
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential(multiplier=0.1, max=2),
            stop=stop_after_delay(self._parts.settings.lease_seconds),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    async with flight.storage.lock:
                        return await self._write_once(flight, outcome, started_at, duration_ms)
        except Exception as exc:
            logger.bind(run_id=flight.run.id, error=repr(exc)).error(
                "could not record the outcome; the run's lease will expire and it is retried"
                if flight.storage.stored
                else "could not record the outcome; its delivery is left to Dapr to retry"
            )
        return False

    async def _write_once(
        self, flight: Flight, outcome: Outcome, started_at: datetime, duration_ms: float
    ) -> bool:
        run = flight.run
        if not flight.storage.stored:
            return await self._insert_finished(flight, outcome, started_at, duration_ms)
        if outcome.status is RunStatus.PENDING:
            return await self._parts.runs.release(
                run_id=run.id, instance=self._parts.instance, now=utc_now()
            )
        now = utc_now()
        attempt = self._attempt_record(run, outcome, started_at, now)
        return await self._parts.runs.finish_attempt(
            run_id=run.id,
            instance=self._parts.instance,
            status=outcome.status,
            attempt=attempt,
            finished_at=None if outcome.status is RunStatus.FAILED else now,
            duration_ms=duration_ms,
            result=outcome.result,
            error=outcome.error,
            next_attempt_at=outcome.next_attempt_at,
        )

    async def _insert_finished(
        self, flight: Flight, outcome: Outcome, started_at: datetime, duration_ms: float
    ) -> bool:
        """The one write of a run that was not stored: as its attempt left it. False (and the
        outcome discarded) when the occurrence has a run already: another instance's."""
        run, storage = flight.run, flight.storage
        now = utc_now()
        if outcome.status is RunStatus.PENDING:  # shutting down: any instance takes it
            fields: dict[str, Any] = {
                "status": RunStatus.PENDING,
                "instance": None,
                "started_at": None,
                "next_attempt_at": now,
            }
        else:
            fields = {
                "status": outcome.status,
                "finished_at": None if outcome.status is RunStatus.FAILED else now,
                "duration_ms": duration_ms,
                "result": outcome.result,
                "error": outcome.error,
                "next_attempt_at": outcome.next_attempt_at,
                "attempts": [self._attempt_record(run, outcome, started_at, now)],
            }
        inserted = await self._parts.runs.insert(
            run.model_copy(update=fields), dedupe_key=storage.dedupe_key
        )
        storage.stored = inserted
        storage.recorded = True
        if not inserted and storage.dedupe_key is not None:
            await note_if_sent_again(self._parts, run, storage.dedupe_key)
        return inserted

    def _attempt_record(
        self, run: JobRun, outcome: Outcome, started_at: datetime, now: datetime
    ) -> Attempt:
        return Attempt(
            attempt=run.attempt,
            instance=self._parts.instance,
            started_at=started_at,
            finished_at=now,
            status=outcome.status,
            error=outcome.error,
        )

    async def _hand_over(self, run: JobRun, holder: str, log: Any) -> None:
        """The lease actor says another live instance works on this run: leave it to it."""
        await self._parts.runs.hand_over(
            run_id=run.id,
            instance=self._parts.instance,
            holder=holder,
            lease_until=self._parts.settings.lease_until(utc_now()),
        )
        log.bind(holder=holder).warning("run is leased to another instance; left to it")

    async def _stopped_before_start(self, flight: Flight, log: Any) -> None:
        """Stopped while it waited for its slot: its handler never ran."""
        assert flight.reason is not None
        outcome = stopped_outcome(flight.run, flight.reason)
        if outcome is not None:
            await self._record(flight, outcome, utc_now(), 0.0, log)


class _Slot:
    """A job's concurrency slot, held by one attempt (or none, for a job without a limit):
    given back once, as soon as its handler is over."""

    __slots__ = ("_semaphore",)

    def __init__(self, semaphore: asyncio.Semaphore | None) -> None:
        self._semaphore = semaphore

    def release(self) -> None:
        if self._semaphore is not None:
            self._semaphore.release()
            self._semaphore = None


async def _take_slot(slot: asyncio.Semaphore, flight: Flight) -> bool:
    """Waits for the job's concurrency slot; False (and no slot held) if the flight stopped."""
    if not slot.locked():  # free: taken without waiting
        await slot.acquire()
        return True
    acquire = asyncio.ensure_future(slot.acquire())
    await _first_of(acquire, flight.stopped, within=None)
    if flight.reason is None and acquire.done():
        return True
    if acquire.done() and not acquire.cancelled():
        slot.release()
    else:
        acquire.cancel()
    return False


async def _wait_for_handler(handler: "asyncio.Task[Any]", flight: Flight) -> bool:
    """Waits until the handler ends or the flight is stopped; True when it timed out."""
    while not handler.done() and flight.reason is None:
        remaining = flight.remaining()
        if remaining is not None and remaining <= 0:
            return True
        await _first_of(handler, flight.stopped, within=remaining)
    return False


async def _first_of(
    one: "asyncio.Future[Any]", other: "asyncio.Future[Any]", *, within: float | None
) -> None:
    """Until either future is done, or `within` seconds passed: `asyncio.wait(...,
    FIRST_COMPLETED)` without its sets and its per-member checks, once per run."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    one.add_done_callback(wake)
    other.add_done_callback(wake)
    timer = loop.call_later(within, wake) if within is not None else None
    try:
        await waiter
    finally:
        if timer is not None:
            timer.cancel()
        one.remove_done_callback(wake)
        other.remove_done_callback(wake)


def _validated(job: Job, run: JobRun, payload: BaseModel | None) -> BaseModel:
    """The payload the intake validated, else the run's, validated now."""
    if payload is not None:
        return payload
    assert job.payload_model is not None
    return job.payload_model.model_validate({} if run.payload is None else run.payload)


def _parent_context(run: JobRun) -> Context | None:
    """Within a request (a delivered event), the request's trace; else the run's own."""
    if trace.get_current_span().get_span_context().is_valid or not run.traceparent:
        return None
    return TraceContextTextMapPropagator().extract({"traceparent": run.traceparent})
