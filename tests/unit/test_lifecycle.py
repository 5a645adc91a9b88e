"""The run lifecycle's rules: which status an attempt leaves its run in."""

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from app.core.clock import utc_now
from app.dispatch.flight import Flight, StopReason
from app.dispatch.lifecycle import attempt_outcome, failure, lost_attempt
from app.models.runs import JobRun, RunError, RunStatus, RunTrigger
from app.workers import GiveUp, JobContext, RetryLater, RunCancelled
from app.workers.registry import Job, Registry

registry = Registry()


@registry.manual(name="three_tries", max_attempts=3, retry_base_seconds=2)
async def three_tries(ctx: JobContext) -> None:
    """Never called: its registration is what the rules read."""


JOB: Job = registry.get("three_tries")  # type: ignore[assignment]


def run_at(attempt: int) -> JobRun:
    return JobRun.new(
        id="0" * 24, job=JOB, trigger=RunTrigger(type="manual"), at=utc_now(), payload=None
    ).model_copy(update={"attempt": attempt, "status": RunStatus.RUNNING})


async def ended(outcome: Any) -> "asyncio.Task[Any]":
    async def handler() -> Any:
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    task = asyncio.ensure_future(handler())
    await asyncio.wait({task})
    return task


async def test_a_result_succeeds_and_an_error_is_retried_until_the_last_attempt() -> None:
    flight = Flight(run=run_at(1), timeout_seconds=None)

    done = attempt_outcome(JOB, run_at(1), await ended({"n": 1}), flight, timed_out=False)
    first = attempt_outcome(JOB, run_at(1), await ended(ValueError("x")), flight, timed_out=False)
    last = attempt_outcome(JOB, run_at(3), await ended(ValueError("x")), flight, timed_out=False)

    assert done is not None
    assert (done.status, done.result) == (RunStatus.SUCCEEDED, {"n": 1})
    assert first is not None
    assert first.status is RunStatus.FAILED
    assert first.next_attempt_at is not None
    assert first.error is not None
    assert "ValueError" in (first.error.traceback or "")
    assert last is not None
    assert last.status is RunStatus.DEAD


async def test_the_handler_steers_its_run() -> None:
    flight = Flight(run=run_at(1), timeout_seconds=None)

    gave_up = attempt_outcome(JOB, run_at(1), await ended(GiveUp("no")), flight, timed_out=False)
    later = attempt_outcome(
        JOB, run_at(1), await ended(RetryLater("wait", defer_seconds=3600)), flight, timed_out=False
    )
    cancelled = attempt_outcome(
        JOB, run_at(1), await ended(RunCancelled("stop")), flight, timed_out=False
    )

    assert gave_up is not None
    assert gave_up.status is RunStatus.DEAD
    assert later is not None
    assert later.next_attempt_at is not None
    assert later.next_attempt_at - utc_now() > timedelta(minutes=59)
    assert cancelled is not None
    assert cancelled.status is RunStatus.CANCELLED


@pytest.mark.parametrize(
    ("reason", "status"),
    [(StopReason.CANCELLED, RunStatus.CANCELLED), (StopReason.DRAINING, RunStatus.PENDING)],
)
async def test_a_stopped_flight_decides_over_the_handler(
    reason: StopReason, status: RunStatus
) -> None:
    flight = Flight(run=run_at(1), timeout_seconds=None)
    flight.stop(reason)

    outcome = attempt_outcome(JOB, run_at(1), await ended({"n": 1}), flight, timed_out=False)

    assert outcome is not None
    assert outcome.status is status


async def test_a_lost_lease_writes_nothing_and_a_timeout_is_a_failure() -> None:
    lost = Flight(run=run_at(1), timeout_seconds=None)
    lost.stop(StopReason.LEASE_LOST)
    running = Flight(run=run_at(1), timeout_seconds=1)

    assert attempt_outcome(JOB, run_at(1), await ended(None), lost, timed_out=False) is None
    timed_out = attempt_outcome(JOB, run_at(1), await ended(None), running, timed_out=True)
    assert timed_out is not None
    assert timed_out.error is not None
    assert timed_out.error.type == "TimedOut"


def test_a_failure_on_the_last_attempt_is_dead() -> None:
    error = RunError(type="X", message="x")

    assert failure(JOB, run_at(2), error).status is RunStatus.FAILED
    assert failure(JOB, run_at(3), error).status is RunStatus.DEAD


def test_the_attempt_an_instance_lost_keeps_its_instance_and_start() -> None:
    began = utc_now() - timedelta(minutes=1)
    orphan = run_at(2).model_copy(update={"instance": "died-1", "attempt_started_at": began})

    lost = lost_attempt(orphan, utc_now())

    assert (lost.attempt, lost.instance, lost.started_at) == (2, "died-1", began)
    assert lost.status is RunStatus.FAILED
    assert lost.error is not None
    assert lost.error.type == "LeaseExpired"
