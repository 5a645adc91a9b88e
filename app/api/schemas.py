"""The JSON shapes of the operator API (DESIGN.md, "HTTP contract")."""

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from app.dispatch.backfill import Backfill
from app.models.failures import FailureGroup
from app.models.runs import (
    Attempt,
    JobKind,
    JobRun,
    Progress,
    Refusal,
    RunError,
    RunStatus,
)
from app.repositories.pauses import Pause
from app.workers.registry import Job

T = TypeVar("T")


class Problem(BaseModel):
    """An error answer: what went wrong (FastAPI's own request validation gives a list)."""

    detail: str | list[dict[str, Any]]
    errors: list[dict[str, Any]] | None = Field(None, description="a payload's errors, each")
    status: str | None = Field(None, description="the run's status, when it cannot be acted on")


_PROBLEMS = {
    401: "the operator token is missing or wrong (when Api:OperatorToken is set)",
    404: "no such job, run or schedule",
    409: "the run's status does not allow this",
    413: "the request body is over Api:MaxRequestBytes",
    422: "the request or the job's payload is invalid",
    502: "the Dapr sidecar refused or did not answer",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error codes, all answered with a `Problem`."""
    return {code: {"model": Problem, "description": _PROBLEMS[code]} for code in codes}


OPERATOR_PROBLEMS = problems(401, 413, 422)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next: str | None = Field(description="pass as `before` for the next page; null on the last")


class RunOut(BaseModel):
    id: str
    job: str
    kind: JobKind
    status: RunStatus
    trigger: dict[str, Any] = Field(description="`type` and what identifies the occurrence")
    attempt: int
    max_attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: float | None
    instance: str | None
    progress: Progress | None
    result: dict[str, Any] | None
    error: RunError | None
    trace_id: str | None
    payload: Any
    next_attempt_at: datetime | None
    cancel_requested: bool
    requeued_as: str | None
    attempts: list[Attempt]
    sequence_key: str | None
    refusals: list[Refusal] = Field(description="second runs for the same occurrence, refused")
    parent_run_id: str | None = Field(None, description="a workflow step: its workflow's run")
    step: str | None = Field(None, description="a workflow step: its name in the workflow")
    suspended_at: datetime | None = Field(
        None, description="a workflow run: since when its instance is suspended (running stays)"
    )
    purged_at: datetime | None = Field(
        None, description="a finished workflow run: when its instance's state was purged"
    )
    gate: str | None = Field(None, description="the flow gate its job's limits hold it at")
    held_reason: str | None = Field(
        None, description="a pending run held back: why (its job paused, its gate full)"
    )

    @classmethod
    def of(cls, run: JobRun) -> "RunOut":
        fields = run.model_dump(exclude={"trigger", "checkpoint"})
        return cls(**fields, trigger=run.trigger.model_dump(mode="json", exclude_none=True))


class InstanceOut(BaseModel):
    status: str = Field(description="Dapr's: PENDING, RUNNING, SUSPENDED, COMPLETED, FAILED...")
    waiting_on: str | None = Field(description="what the workflow waits for: a timer, an event")
    updated_at: datetime = Field(description="when the instance last moved")


class PauseOut(BaseModel):
    paused_at: datetime
    by: str
    drop: bool = Field(description="deliveries are recorded as skipped, not kept to run later")
    skipped_firings: int = Field(description="a cron binding's ticks answered without a run")


class JobOut(BaseModel):
    name: str
    kind: JobKind
    trigger: str | None = Field(description="its cron expression, topic or binding")
    max_attempts: int
    last_run: RunOut | None
    description: str
    binding: str | None
    concurrency: int | None
    chunk_size: int | None
    ordered_by: str | None
    max_running: int | None = Field(description="runs at once across all instances (per key)")
    concurrency_key: str | None = Field(
        description="the payload field the limits hold per value of"
    )
    rate_limit: str | None = Field(description="starts per period across all instances (per key)")
    overlap: str = Field(
        description="a tick while the previous run still runs: allow, skip, buffer_one"
    )
    paused: PauseOut | None = None

    @classmethod
    def of(cls, job: Job, last_run: JobRun | None, pause: Pause | None = None) -> "JobOut":
        return cls(
            name=job.name,
            kind=job.kind,
            trigger=job.trigger,
            max_attempts=job.max_attempts,
            last_run=RunOut.of(last_run) if last_run else None,
            description=job.description,
            binding=job.binding,
            concurrency=job.concurrency,
            chunk_size=job.chunk_size,
            ordered_by=job.ordered_by,
            max_running=job.max_running,
            concurrency_key=job.concurrency_key,
            rate_limit=str(job.rate_limit) if job.rate_limit else None,
            overlap=job.overlap,
            paused=PauseOut.model_validate(pause.model_dump()) if pause else None,
        )


class DeadLetterOut(BaseModel):
    id: str = Field(description="the dead run's id")
    job: str
    kind: JobKind
    trigger: dict[str, Any]
    payload: Any
    attempt: int
    error: RunError | None
    failed_at: datetime | None

    @classmethod
    def of(cls, run: JobRun) -> "DeadLetterOut":
        return cls(
            id=run.id,
            job=run.job,
            kind=run.kind,
            trigger=run.trigger.model_dump(mode="json", exclude_none=True),
            payload=run.payload,
            attempt=run.attempt,
            error=run.error,
            failed_at=run.finished_at,
        )


class FailureGroupOut(BaseModel):
    fingerprint: str
    error_type: str
    message: str = Field(description="the message with ids, numbers and quoted text taken out")
    example: str
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    jobs: dict[str, int]

    @classmethod
    def of(cls, group: FailureGroup) -> "FailureGroupOut":
        return cls(**{**vars(group), "jobs": dict(group.jobs)})


class RequeuedOut(BaseModel):
    matching: int = Field(description="dead runs that match the filter")
    requeued: list[str] = Field(description="the new runs' ids (none in a dry run)")
    skipped: dict[str, str] = Field(description="dead runs that could not be requeued, and why")


class Accepted(BaseModel):
    run_id: str


class BackfillOut(BaseModel):
    ticks: int = Field(description="the schedule's ticks in the range")
    had_runs: int = Field(description="of them, those that had a run already")
    missing: list[datetime] = Field(description="the ticks with no run (before this backfill)")
    made: list[str] = Field(description="the new runs' ids (none in a dry run)")

    @classmethod
    def of(cls, done: Backfill) -> "BackfillOut":
        return cls(
            ticks=len(done.ticks),
            had_runs=len(done.had_runs),
            missing=done.missing,
            made=[run.id for run in done.made],
        )


class TriggerIn(BaseModel):
    payload: Any = None
