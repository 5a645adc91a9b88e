"""A job run: one execution of one worker, the history every operator reads."""

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

WorkerKind = Literal["scheduled", "event", "queue", "data", "integration"]
TriggerType = Literal["cron", "event", "schedule", "manual", "requeue"]


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # will be retried
    DEAD = "dead"  # gave up: in the dead set
    CANCELLED = "cancelled"


class RunTrigger(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: TriggerType
    tick: datetime | None = None
    event_id: str | None = None
    topic: str | None = None
    schedule: str | None = None


class Progress(BaseModel):
    done: int
    total: int | None = None


class RunError(BaseModel):
    type: str
    message: str
    traceback: str | None = None


class JobRun(BaseModel):
    id: str
    job: str
    kind: WorkerKind
    status: RunStatus
    trigger: RunTrigger
    attempt: int = 1
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: float | None = None
    instance: str
    progress: Progress | None = None
    result: dict[str, Any] | None = None
    error: RunError | None = None
    trace_id: str | None = None
