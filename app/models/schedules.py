"""A schedule created at run time through the Dapr Jobs API."""

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from app.workers.schedule import Schedule


class JobSchedule(BaseModel):
    name: str
    job: str
    cron: str | None
    due_time: datetime | None
    payload: Any
    created_at: datetime

    def occurrence_of(self, fired_at: datetime) -> datetime:
        """The occurrence a firing belongs to: the due time of a one-off schedule, else the
        firing mapped onto the schedule's grid (as cron ticks are), so that a redelivered
        firing names the same occurrence."""
        if self.cron is None and self.due_time is not None:
            return self.due_time.astimezone(UTC)
        if self.cron is None:
            return fired_at.astimezone(UTC).replace(microsecond=0)
        return Schedule.parse(self.cron).tick_of(fired_at)
