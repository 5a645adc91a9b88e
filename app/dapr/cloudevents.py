"""The CloudEvent envelope Dapr wraps every pub/sub message in."""

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CloudEvent(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(min_length=1)
    source: str = ""
    type: str = ""
    specversion: str = "1.0"
    datacontenttype: str | None = None
    data: Any = None
    topic: str | None = None
    pubsubname: str | None = None
    traceparent: str | None = None

    def sent_at(self) -> datetime | None:
        """The event's `time` (set by the publishing daprd), None without a readable one."""
        sent = (self.model_extra or {}).get("time")
        if not isinstance(sent, str):
            return None
        # Go writes nanoseconds; Python reads at most microseconds.
        sent = _FRACTION.sub(lambda m: m.group(0)[:7], sent.replace("Z", "+00:00"))
        try:
            moment = datetime.fromisoformat(sent)
        except ValueError:
            return None
        return moment if moment.tzinfo is not None else None

    def seconds_since_sent(self, now: datetime) -> float | None:
        """From the event's `time` to `now`; None without one."""
        sent = self.sent_at()
        return None if sent is None else (now - sent).total_seconds()


_FRACTION = re.compile(r"\.\d+")
