"""A job's limits across all instances, as its decorator declares them: how many of its runs
run at once (`max_running`), per value of a payload field (`concurrency_key`), how many start
per period (`rate_limit`), and what a cron tick does while the previous run still runs
(`overlap`). The FlowGate actor holds them (app/actors/flow_gate.py)."""

import re
from dataclasses import dataclass
from typing import Literal

from app.core.errors import AevatarError

Overlap = Literal["allow", "skip", "buffer_one"]
"""A tick (or a Jobs API schedule's firing) that comes while the job's previous run still runs
(or waits): `allow` (default) makes its run all the same; `skip` records the tick as a skipped
(cancelled) run; `buffer_one` keeps one run waiting, which starts when the running one ends, and
skips any tick beyond it. With `skip` and `buffer_one` no two runs of the job run at once,
across all instances."""
OVERLAP_POLICIES: tuple[Overlap, ...] = ("allow", "skip", "buffer_one")

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_RATE = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d+)?\s*([a-z]+?)s?\s*$")


class InvalidRateLimit(AevatarError, ValueError):
    pass


@dataclass(frozen=True)
class RateLimit:
    """At most `count` starts in any `period_seconds` (a sliding window)."""

    count: int
    period_seconds: float

    @classmethod
    def parse(cls, text: str) -> "RateLimit":
        """`"100/min"`, `"5/s"`, `"1000/hour"`, `"10/30s"`, `"3 per day"`."""
        match = _RATE.match(text.lower())
        unit = _UNITS.get(match.group(3)) if match else None
        if match is None or unit is None:
            raise InvalidRateLimit(
                f"rate_limit={text!r} is not `<count>/<period>` (e.g. '100/min', '5/s', '10/30s')"
            )
        count, periods = int(match.group(1)), int(match.group(2) or 1)
        if count < 1 or periods < 1:
            raise InvalidRateLimit(f"rate_limit={text!r}: the count and the period must be >= 1")
        return cls(count=count, period_seconds=float(periods * unit))

    def __str__(self) -> str:
        return f"{self.count}/{self.period_seconds:g}s"


@dataclass(frozen=True)
class FlowLimits:
    """What one gate (a job's, or one key value's of it) lets through."""

    max_running: int | None = None
    rate: RateLimit | None = None

    @property
    def any(self) -> bool:
        return self.max_running is not None or self.rate is not None
