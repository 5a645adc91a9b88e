"""The executor: runs one attempt of a run this instance has claimed, and records its outcome.

Each attempt is an asyncio task under a lease (`RunLeaseKeeper`). A failed attempt is retried
with backoff and jitter up to the job's maximum, then the run is dead. Every write that ends an
attempt is conditional on this instance still owning the run.
"""

import asyncio
import contextlib
import time
import traceback
from datetime import datetime, timedelta
from typing import Any

from loguru import logger
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from app.actors.client import ActorClient
from app.core.clock import utc_now
from app.dispatch.context_factory import ContextFactory
from app.dispatch.lease import RunLeaseKeeper
from app.dispatch.metrics import RunMetrics
from app.dispatch.settings import EngineSettings
from app.models.runs import Attempt, JobRun, RunError, RunStatus
from app.repositories.runs import RunRepository
from app.workers.errors import GiveUp, LeaseLost, RetryLater, RunCancelled
from app.workers.registry import Registry, Worker


class RunExecutor:
    def __init__(
        self,
        *,
        registry: Registry,
        runs: RunRepository,
        contexts: ContextFactory,
        actors: ActorClient,
        instance: str,
        engine: EngineSettings,
        tracer: trace.Tracer,
        metrics: RunMetrics,
    ) -> None:
        self._registry = registry
        self._runs = runs
        self._contexts = contexts
        self._actors = actors
        self._instance = instance
        self._engine = engine
        self._tracer = tracer
        self._metrics = metrics
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancelled_by_operator: set[str] = set()
        self._limits = {w.name: asyncio.Semaphore(w.concurrency) for w in registry if w.concurrency}

    @property
    def has_capacity(self) -> bool:
        return len(self._tasks) < self._engine.max_in_flight

    def start(self, run: JobRun) -> asyncio.Task[None]:
        """Starts an attempt of a run this instance has claimed."""
        task = asyncio.create_task(self._execute(run), name=f"run-{run.job}-{run.id}")
        self._tasks[run.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(run.id, None))
        return task

    def interrupt(self, run: JobRun) -> bool:
        """Cancels a run executing here (not a data processor: it stops at a chunk boundary)."""
        task = self._tasks.get(run.id)
        if task is None or run.kind == "data":
            return False
        self._cancelled_by_operator.add(run.id)
        task.cancel()
        return True

    async def drain(self) -> None:
        """Graceful shutdown: in-flight runs may finish within the grace period; the rest are
        handed back to the queue for another instance (or this one, restarted)."""
        if not self._tasks:
            return
        pending = set(self._tasks.values())
        logger.bind(in_flight=len(pending)).info("draining in-flight runs")
        _, still_running = await asyncio.wait(pending, timeout=self._engine.shutdown_grace_seconds)
        for task in still_running:
            task.cancel()
        await asyncio.gather(*still_running, return_exceptions=True)

    async def _execute(self, run: JobRun) -> None:
        log = logger.bind(job=run.job, run_id=run.id, attempt=run.attempt, kind=run.kind)
        worker = self._registry.get(run.job)
        if worker is None:
            error = RunError(type="UnknownJob", message=f"no worker named {run.job!r} is here")
            await self._finish(
                run, RunStatus.DEAD, started_at=utc_now(), clock=0.0, log=log, error=error
            )
            return
        lease = RunLeaseKeeper(
            run=run,
            runs=self._runs,
            actors=self._actors,
            instance=self._instance,
            engine=self._engine,
        )
        holder = await lease.acquire()
        if holder is not None:
            # The lease actor says another instance is alive and working on this run.
            await self._runs.hand_over(
                run_id=run.id,
                instance=self._instance,
                holder=holder,
                lease_until=utc_now() + timedelta(seconds=self._engine.lease_seconds),
            )
            log.bind(holder=holder).warning("run is leased to another instance; left to it")
            return
        try:
            async with self._limits.get(worker.name) or contextlib.nullcontext():
                await self._attempt(worker, run, lease, log)
        finally:
            await lease.release()

    async def _attempt(self, worker: Worker, run: JobRun, lease: RunLeaseKeeper, log: Any) -> None:
        started_at = utc_now()
        context = self._contexts.build(worker, run, log=log, control=lease)
        keeper = asyncio.create_task(lease.keep(asyncio.current_task()))
        clock = time.perf_counter()
        finish = {"started_at": started_at, "clock": clock, "log": log}
        with self._tracer.start_as_current_span(
            f"run {worker.name}",
            context=_parent_context(run),
            kind=SpanKind.CONSUMER,
            attributes={"job": worker.name, "run.id": run.id, "run.attempt": run.attempt},
        ) as span:
            try:
                payload = _payload_for(worker, run.payload)
                result = await (
                    worker.handler(payload, context)
                    if worker.payload_model
                    else worker.handler(context)
                )
            except RunCancelled as exc:
                await self._finish(run, RunStatus.CANCELLED, **finish, error=_error(exc, tb=False))
            except LeaseLost:
                log.warning("lease lost: another instance has taken this run over; stopping")
            except asyncio.CancelledError:
                if run.id in self._cancelled_by_operator:
                    self._cancelled_by_operator.discard(run.id)
                    cancelled = RunError(type="Cancelled", message="cancelled by an operator")
                    await self._finish(run, RunStatus.CANCELLED, **finish, error=cancelled)
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
                await self._fail(worker, run, exc, **finish)
            else:
                await self._finish(run, RunStatus.SUCCEEDED, **finish, result=result)
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
        if isinstance(exc, GiveUp) or worker.retry.gives_up_after(run.attempt):
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
            next_attempt_at=utc_now() + timedelta(seconds=delay),
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
        self._metrics.attempt_finished(
            job=run.job, kind=run.kind, status=status, duration_ms=duration_ms
        )
        log.bind(status=status.value, duration_ms=round(duration_ms, 1)).info("run finished")


def _parent_context(run: JobRun) -> Context | None:
    """Within a request (a delivered event), the request's trace; else the run's own."""
    if trace.get_current_span().get_span_context().is_valid or not run.traceparent:
        return None
    return TraceContextTextMapPropagator().extract({"traceparent": run.traceparent})


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
