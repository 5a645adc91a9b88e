"""What an operator gives to create or replace a Jobs API schedule, checked the same way for
the operator API's JSON and the dashboard's form."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator

from app.workers.schedule import InvalidSchedule, Schedule


class ScheduleIn(BaseModel):
    job: str
    cron: str | None = Field(None, description="`@every 2s`, `@daily`, or six-field cron")
    due_time: datetime | None = Field(None, description="one run at this time (ISO 8601)")
    payload: Any = None

    @model_validator(mode="after")
    def _one_timing(self) -> "ScheduleIn":
        if (self.cron is None) == (self.due_time is None):
            raise ValueError("give exactly one of `cron` and `due_time`")
        if self.cron is not None:
            try:
                Schedule.parse(self.cron, dapr_jobs=True)
            except InvalidSchedule as exc:
                raise ValueError(str(exc)) from exc
        if self.due_time is not None and self.due_time.tzinfo is None:
            raise ValueError("`due_time` needs a time zone (e.g. 2026-01-01T00:00:00Z)")
        return self
