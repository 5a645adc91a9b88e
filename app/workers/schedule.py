"""Schedule expressions, as Dapr writes them: `@every <duration>` or a cron expression.

Cron expressions have five fields (minute first) or six (seconds first, as in Dapr's cron
binding and Jobs API). Parsing is croniter's; `tick_of` maps a firing time onto the schedule's
grid, so that every instance that receives the same firing names the same tick.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

from app.core.errors import AevatarError

_EVERY = re.compile(r"^@every\s+((?:\d+(?:\.\d+)?(?:ms|s|m|h))+)$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


class InvalidSchedule(AevatarError, ValueError):
    pass


@dataclass(frozen=True)
class Schedule:
    expression: str

    @classmethod
    def parse(cls, expression: str, *, dapr_jobs: bool = False) -> "Schedule":
        """`dapr_jobs`: only what the Dapr Jobs API accepts (six fields, `@every`, macros)."""
        expression = expression.strip()
        if _EVERY.match(expression):
            if _every_seconds(expression) <= 0:
                raise InvalidSchedule(f"{expression!r}: the interval must be positive")
            return cls(expression)
        if expression in _MACROS:
            return cls(expression)
        fields = expression.split()
        if dapr_jobs and len(fields) != 6:
            raise InvalidSchedule(
                f"{expression!r}: the Dapr Jobs API takes `@every 30s`, `@daily` and the like, or "
                "six-field cron with seconds first (`0 */5 * * * *`)"
            )
        if len(fields) not in (5, 6) or not croniter.is_valid(
            expression, second_at_beginning=len(fields) == 6
        ):
            raise InvalidSchedule(
                f"{expression!r} is not a schedule: write `@every 30s`, a five-field cron "
                "expression (`*/5 * * * *`) or a six-field one with seconds first "
                "(`0 */5 * * * *`)"
            )
        return cls(expression)

    def tick_of(self, fired_at: datetime, *, anchor: datetime | None = None) -> datetime:
        """The scheduled time this firing belongs to: the latest grid point at or before it.

        An `@every` grid starts at `anchor` when given (the Jobs API's scheduler counts periods
        from when it took the job), else at the epoch (cron bindings: every instance's sidecar
        has its own start, and only the epoch's grid is common to them all)."""
        fired_at = fired_at.astimezone(UTC)
        if self.expression.startswith("@every"):
            period = _every_seconds(self.expression)
            origin = anchor.timestamp() if anchor is not None else 0.0
            since_origin = fired_at.timestamp() - origin
            return datetime.fromtimestamp(origin + since_origin - since_origin % period, UTC)
        six = len(self.expression.split()) == 6
        probe = fired_at + timedelta(microseconds=1)
        tick: datetime = croniter(self.expression, probe, second_at_beginning=six).get_prev(
            datetime
        )
        return tick.astimezone(UTC)

    def next_after(self, now: datetime, *, anchor: datetime | None = None) -> datetime:
        """The first grid point after `now` (see `tick_of` for the grid of `@every`)."""
        now = now.astimezone(UTC)
        if self.expression.startswith("@every"):
            return self.tick_of(now, anchor=anchor) + timedelta(
                seconds=_every_seconds(self.expression)
            )
        six = len(self.expression.split()) == 6
        following: datetime = croniter(self.expression, now, second_at_beginning=six).get_next(
            datetime
        )
        return following.astimezone(UTC)

    def ticks_between(self, since: datetime, until: datetime, *, most: int) -> list[datetime]:
        """The grid points from `since` to `until`, both included (an `@every` grid on the
        epoch, as cron bindings have it); at most `most` + 1, so a caller sees too many."""
        ticks: list[datetime] = []
        tick = self.tick_of(since)
        if tick < since.astimezone(UTC):
            tick = self.next_after(tick)
        while tick <= until.astimezone(UTC) and len(ticks) <= most:
            ticks.append(tick)
            tick = self.next_after(tick)
        return ticks


def _every_seconds(expression: str) -> float:
    match = _EVERY.match(expression)
    assert match is not None
    return sum(
        float(amount) * _UNIT_SECONDS[unit]
        for amount, unit in _DURATION_PART.findall(match.group(1))
    )
