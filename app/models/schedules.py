"""A schedule created at run time through the Dapr Jobs API."""

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel

from app.workers.schedule import Schedule

# The scheduler's clock may run a little behind this instance's (another host, in Kubernetes).
_CLOCK_SKEW = timedelta(milliseconds=100)


class JobSchedule(BaseModel):
    name: str
    job: str
    cron: str | None
    due_time: datetime | None
    payload: Any
    created_at: datetime
    # Taken just before the sidecar was asked to (re)create the job: its `@every` periods count
    # from a moment a little after this. None on schedules stored before it was kept.
    anchored_at: datetime | None = None
    paused_at: datetime | None = None
    """Paused: the sidecar's job is deleted, this record kept; resuming creates it anew."""

    @property
    def paused(self) -> bool:
        return self.paused_at is not None

    def next_fire_after(self, now: datetime) -> datetime | None:
        """When it fires next (None: paused, or a one-off whose time has passed)."""
        if self.paused:
            return None
        if self.cron is None:
            return self.due_time if self.due_time and self.due_time > now else None
        anchor = self.due_time or self.anchored_at
        return Schedule.parse(self.cron).next_after(now, anchor=anchor)

    def occurrence_of(self, fired_at: datetime) -> datetime:
        """The occurrence a firing belongs to: the due time of a one-off schedule, else the
        firing mapped onto the schedule's grid (as cron ticks are), so that a redelivered
        firing names the same occurrence."""
        if self.cron is None and self.due_time is not None:
            return self.due_time.astimezone(UTC)
        if self.cron is None:
            return fired_at.astimezone(UTC).replace(microsecond=0)
        anchor = self.due_time or (self.anchored_at - _CLOCK_SKEW if self.anchored_at else None)
        return Schedule.parse(self.cron).tick_of(fired_at, anchor=anchor)


class ScheduleSpec(Protocol):
    """What a Jobs API schedule is made of: the API's and the dashboard's request, or a
    stored schedule being resumed."""

    @property
    def job(self) -> str: ...

    @property
    def cron(self) -> str | None: ...

    @property
    def due_time(self) -> datetime | None: ...

    @property
    def payload(self) -> Any: ...
