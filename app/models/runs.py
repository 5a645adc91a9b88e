"""A job run: one execution of one worker, the history every operator reads."""

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from app.core.clock import utc_now
from app.core.trace_context import current_trace

JobKind = Literal["scheduled", "event", "queue", "data", "integration", "manual", "workflow"]
TriggerType = Literal["cron", "event", "schedule", "manual", "requeue", "workflow"]


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # will be retried
    DEAD = "dead"  # gave up: in the dead set
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.SUCCEEDED, RunStatus.DEAD, RunStatus.CANCELLED)


class RunTrigger(BaseModel):
    """What started the run, and what identifies that occurrence."""

    model_config = ConfigDict(frozen=True)

    type: TriggerType
    tick: datetime | None = None
    event_id: str | None = None
    topic: str | None = None
    schedule: str | None = None
    retry_of: str | None = None
    from_step: str | None = None
    """A workflow run re-run from the step that failed (`retry_of`'s): that step's name."""
    missed_ticks: list[datetime] | None = None
    """A run made for ticks no instance could store while the database was away: those ticks
    (`tick` is the newest)."""
    requeued_from: str | None = None
    backfilled: bool | None = None
    """A run an operator's backfill made for `tick`, which had none."""


class Progress(BaseModel):
    done: int
    total: int | None = None


class RunError(BaseModel):
    type: str
    message: str
    traceback: str | None = None


class Attempt(BaseModel):
    """One attempt of a run, kept on the run so that every attempt stays visible."""

    attempt: int
    instance: str
    started_at: datetime
    finished_at: datetime | None = None
    status: RunStatus
    error: RunError | None = None


class Refusal(BaseModel):
    """A second run for the same occurrence, refused, and why."""

    instance: str
    at: datetime
    reason: str


class JobSpec(Protocol):
    """What a new run takes from its job (a registered worker)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> JobKind: ...

    @property
    def max_attempts(self) -> int: ...


class JobRun(BaseModel):
    id: str
    job: str
    kind: JobKind
    status: RunStatus
    trigger: RunTrigger
    attempt: int = 1
    max_attempts: int = 1
    created_at: datetime
    started_at: datetime | None = None
    attempt_started_at: datetime | None = None
    """When the attempt in progress began (set while the run is claimed)."""
    finished_at: datetime | None = None
    duration_ms: float | None = None
    instance: str | None = None
    progress: Progress | None = None
    result: dict[str, Any] | None = None
    error: RunError | None = None
    trace_id: str | None = None
    traceparent: str | None = None
    """The W3C trace context the run was created in: its later attempts join that trace."""
    payload: Any = None
    attempts: list[Attempt] = Field(default_factory=list)
    next_attempt_at: datetime | None = None
    cancel_requested: bool = False
    requeued_as: str | None = None
    checkpoint: Any = None
    sequence_key: str | None = None
    refusals: list[Refusal] = Field(default_factory=list)
    parent_run_id: str | None = None
    """A workflow's step: the run of the workflow instance that called it."""
    step: str | None = None
    """A workflow's step: its name in the workflow (the job's, unless the workflow named it)."""
    suspended_at: datetime | None = None
    """A workflow run whose instance an operator suspended: since when (None once resumed)."""
    purged_at: datetime | None = None
    """A finished workflow run whose instance's state an operator purged from the sidecar."""
    gate: str | None = None
    """A run of a job with limits across instances: the FlowGate it passes before it starts."""
    held_reason: str | None = None
    """A pending run held back: why (its job paused; its gate full). Cleared when it starts."""

    @classmethod
    def new(
        cls,
        *,
        id: str,
        job: JobSpec,
        trigger: RunTrigger,
        at: datetime,
        payload: Any,
        status: RunStatus = RunStatus.PENDING,
        **fields: Any,
    ) -> "JobRun":
        """A run of `job` made now, in the current trace: its first attempt, not yet stored."""
        return cls(
            id=id,
            job=job.name,
            kind=job.kind,
            max_attempts=job.max_attempts,
            status=status,
            trigger=trigger,
            created_at=at,
            payload=payload,
            **current_trace(),
            **fields,
        )

    @classmethod
    def skipped(
        cls,
        *,
        id: str,
        job: JobSpec,
        trigger: RunTrigger,
        payload: Any,
        instance: str,
        error: "RunError",
    ) -> "JobRun":
        """An occurrence recorded and not run (a pause that drops, an overlap policy, missed
        ticks with catch_up="none"): cancelled at once, `error` saying why."""
        now = utc_now()
        return cls.new(
            id=id,
            job=job,
            trigger=trigger,
            at=now,
            payload=payload,
            status=RunStatus.CANCELLED,
            finished_at=now,
            instance=instance,
            error=error,
        )
