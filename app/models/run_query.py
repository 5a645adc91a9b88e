"""A filtered view of the run history, as the dashboard's URLs and the CSV export give it."""

from datetime import datetime

from pydantic import BaseModel, Field

from app.models.runs import JobKind, RunStatus, TriggerType


class RunQuery(BaseModel):
    job: str | None = None
    kind: JobKind | None = None
    status: RunStatus | None = None
    trigger: TriggerType | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = Field(None, max_length=200)
    """Matched, case-insensitively, against the payload, result and error."""
    before: str | None = None
    limit: int = Field(50, ge=1, le=500)
