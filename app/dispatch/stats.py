"""Run statistics for the dashboard: counts and latency histograms per job and period.

Gathered in memory as attempts finish and written by the heartbeat a few times a minute, one
upsert per job and period: the run path pays no database write for them. What an instance had
not written when it died is missing from the charts (never from the run history).
"""

import bisect
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from app.models.runs import JobKind, RunStatus

# Upper bounds, in ms, of the latency buckets (the last bucket is everything above).
BUCKETS_MS = (
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 300_000,
)  # fmt: skip


def bucket_of(ms: float) -> int:
    return bisect.bisect_left(BUCKETS_MS, ms)


def percentile_ms(histogram: dict[int, int], fraction: float) -> float | None:
    """The upper bound of the bucket the `fraction` quantile falls in (None: no samples;
    `inf` for the open top bucket)."""
    total = sum(histogram.values())
    if total == 0:
        return None
    wanted = fraction * total
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= wanted:
            return float(BUCKETS_MS[bucket]) if bucket < len(BUCKETS_MS) else float("inf")
    return float("inf")


@dataclass(frozen=True)
class FinishedAttempt:
    job: str
    kind: JobKind
    status: RunStatus
    duration_ms: float
    wait_ms: float | None  # from the run's creation; None after its first attempt
    at: datetime


@dataclass
class Tally:
    """What one job did in one minute, on one instance, since the last write."""

    job: str
    kind: JobKind
    minute: datetime
    statuses: Counter[str] = field(default_factory=Counter)
    duration: Counter[int] = field(default_factory=Counter)
    wait: Counter[int] = field(default_factory=Counter)

    def merge(self, other: "Tally") -> None:
        self.statuses.update(other.statuses)
        self.duration.update(other.duration)
        self.wait.update(other.wait)


class RunStats:
    def __init__(self) -> None:
        self._tallies: dict[tuple[datetime, str], Tally] = {}

    def attempt_finished(self, attempt: FinishedAttempt) -> None:
        tally = self._tally(attempt.job, attempt.kind, attempt.at)
        tally.statuses[attempt.status.value] += 1
        tally.duration[bucket_of(attempt.duration_ms)] += 1
        if attempt.wait_ms is not None:
            tally.wait[bucket_of(attempt.wait_ms)] += 1

    def take(self) -> list[Tally]:
        """What was gathered since the last call; `give_back` it when it could not be written."""
        taken = list(self._tallies.values())
        self._tallies = {}
        return taken

    def give_back(self, tallies: list[Tally]) -> None:
        for tally in tallies:
            self._tally(tally.job, tally.kind, tally.minute).merge(tally)

    def _tally(self, job: str, kind: JobKind, at: datetime) -> Tally:
        minute = at.replace(second=0, microsecond=0)
        tally = self._tallies.get((minute, job))
        if tally is None:
            tally = self._tallies[(minute, job)] = Tally(job=job, kind=kind, minute=minute)
        return tally
