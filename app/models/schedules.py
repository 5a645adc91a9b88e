"""A schedule created at run time through the Dapr Jobs API."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class JobSchedule(BaseModel):
    name: str
    job: str
    cron: str | None
    due_time: datetime | None
    payload: Any
    created_at: datetime
