"""The run lifecycle's rules: which status an attempt leaves its run in, and why.

`pending` -> `running` -> `succeeded`; a failed attempt -> `failed` with its next attempt due
(backoff with jitter, or when `RetryLater` asks) until the job's attempts are spent or the
handler gives up -> `dead`; an operator's cancel -> `cancelled`; a shutdown hands the run
back -> `pending`; a lost lease -> nothing written (the run is another instance's). The
executor asks these rules and writes what they say; the repository's writes are conditional
on the instance that owns the run, never rules of their own.
"""

import asyncio
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loguru import logger

from app.core.clock import utc_now
from app.dispatch.died_attempts import every_attempt_lost, poison_error
from app.dispatch.engine import EngineParts
from app.dispatch.flight import Flight, StopReason
from app.dispatch.storable import ResultNotStorable, result_to_store
from app.models.runs import Attempt, JobRun, RunError, RunStatus
from app.workers.errors import GiveUp, LeaseLost, RetryLater, RunCancelled
from app.workers.registry import Job


@dataclass
class Outcome:
    """How an attempt ended, as the run document records it."""

    status: RunStatus
    result: dict[str, Any] | None = None
    error: RunError | None = None
    next_attempt_at: datetime | None = None


def attempt_outcome(
    job: Job,
    run: JobRun,
    handler: "asyncio.Task[Any]",
    flight: Flight,
    *,
    timed_out: bool,
) -> Outcome | None:
    """None: nothing is to be written (the run is another instance's now)."""
    if flight.reason is not None:
        return stopped_outcome(run, flight.reason)
    if timed_out:
        message = (
            f"no chunk finished within {job.timeout_seconds:g} s"
            if job.kind == "data"
            else f"the attempt ran longer than its timeout of {job.timeout_seconds:g} s"
        )
        return failure(job, run, RunError(type="TimedOut", message=message))
    return _handler_outcome(job, run, handler)


def _handler_outcome(job: Job, run: JobRun, handler: "asyncio.Task[Any]") -> Outcome | None:
    if not handler.done() or handler.cancelled():
        error = RunError(type="Cancelled", message="the handler was cancelled from within")
        return failure(job, run, error)
    exc = handler.exception()
    if isinstance(exc, RunCancelled):
        return Outcome(RunStatus.CANCELLED, error=error_of(exc, tb=False))
    if isinstance(exc, LeaseLost):
        return stopped_outcome(run, StopReason.LEASE_LOST)
    if exc is not None:
        return failure(job, run, error_of(exc), exc)
    try:
        return Outcome(RunStatus.SUCCEEDED, result=result_to_store(handler.result()))
    except ResultNotStorable as unstorable:
        return failure(job, run, error_of(unstorable, tb=False))


def failure(job: Job, run: JobRun, error: RunError, exc: BaseException | None = None) -> Outcome:
    log = logger.bind(job=run.job, run_id=run.id, attempt=run.attempt, error=error.message)
    if isinstance(exc, GiveUp) or job.retry.gives_up_after(run.attempt):
        log.error("run failed for good: now in the dead set")
        return Outcome(RunStatus.DEAD, error=error)
    delay = (
        exc.defer_seconds
        if isinstance(exc, RetryLater) and exc.defer_seconds is not None
        else job.retry.delay_after(run.attempt)
    )
    log.bind(retry_in_s=round(delay, 2)).warning("attempt failed; will retry")
    return Outcome(
        RunStatus.FAILED, error=error, next_attempt_at=utc_now() + timedelta(seconds=delay)
    )


def stopped_outcome(run: JobRun, reason: StopReason) -> Outcome | None:
    if reason is StopReason.CANCELLED:
        cancelled = RunError(type="Cancelled", message="cancelled by an operator")
        return Outcome(RunStatus.CANCELLED, error=cancelled)
    if reason is StopReason.DRAINING:
        return Outcome(RunStatus.PENDING)
    logger.bind(job=run.job, run_id=run.id).warning(
        "lease lost: another instance has taken this run over; nothing written here"
    )
    return None


def error_of(exc: BaseException, *, tb: bool = True) -> RunError:
    return RunError(
        type=type(exc).__name__,
        message=str(exc) or type(exc).__name__,
        traceback="".join(traceback.format_exception(exc)) if tb else None,
    )


async def claim_next(
    parts: EngineParts,
    *,
    run_id: str | None = None,
    jobs: list[str] | None = None,
    closed_gates: list[str] | None = None,
) -> JobRun | None:
    """Claims the next run due (or the run `run_id`) for an attempt on this instance: the claim
    path of the poller and of key sequences. An orphan (its instance died mid-attempt) keeps
    its lost attempt on record; one whose attempts are spent goes dead instead of running.
    `jobs`: of these jobs only (default: every registered job); none of `closed_gates`."""
    while True:
        now = utc_now()
        claimed = await parts.runs.claim_due(
            instance=parts.instance,
            now=now,
            lease_until=parts.settings.lease_until(now),
            jobs=jobs if jobs is not None else [job.name for job in parts.registry],
            run_id=run_id,
            closed_gates=closed_gates or (),
        )
        if claimed is None:
            return None
        run = claimed.run
        if claimed.orphaned is not None:
            lost = lost_attempt(claimed.orphaned, now)
            run = await parts.runs.add_attempt(run_id=run.id, attempt=lost)
            if run.attempt > run.max_attempts:
                assert lost.error is not None
                await parts.runs.bury(
                    run_id=run.id,
                    instance=parts.instance,
                    now=now,
                    attempt=run.max_attempts,
                    error=poison_error(len(run.attempts))
                    if every_attempt_lost(run)
                    else lost.error,
                )
                logger.bind(job=run.job, run_id=run.id).error(
                    "orphaned run's attempts are spent: now in the dead set"
                )
                if run_id is not None:
                    return None
                continue  # look for another run
        if run.started_at is None:
            await parts.runs.mark_started(run_id=run.id, now=now)
            run = run.model_copy(update={"started_at": now})
        return run


def lost_attempt(orphaned: JobRun, now: datetime) -> Attempt:
    """The attempt an instance lost when it died (or lost the database), as the run keeps it."""
    return Attempt(
        attempt=orphaned.attempt,
        instance=orphaned.instance or "unknown",
        started_at=orphaned.attempt_started_at or orphaned.started_at or orphaned.created_at,
        finished_at=now,
        status=RunStatus.FAILED,
        error=RunError(
            type="LeaseExpired",
            message="its instance stopped renewing the lease (it died, or lost the database); "
            "the run was taken over",
        ),
    )
