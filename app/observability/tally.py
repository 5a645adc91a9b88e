"""The one tally type: what one job did over one period (a minute or an hour): finished
attempts by status, and latency histograms of the attempts and of the wait before the first.
Gathered in memory by each instance, added up in MongoDB (`app.repositories.run_stats`), and
read back by the dashboard, merged over the periods it shows."""

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
    job: str
    kind: str
    start: datetime
    statuses: Counter[str] = field(default_factory=Counter)
    duration: Counter[int] = field(default_factory=Counter)
    wait: Counter[int] = field(default_factory=Counter)

    def count(self, attempt: FinishedAttempt) -> None:
        self.statuses[attempt.status.value] += 1
        self.duration[bucket_of(attempt.duration_ms)] += 1
        if attempt.wait_ms is not None:
            self.wait[bucket_of(attempt.wait_ms)] += 1

    def merge(self, other: "Tally") -> None:
        self.statuses.update(other.statuses)
        self.duration.update(other.duration)
        self.wait.update(other.wait)

    @property
    def finished(self) -> int:
        return sum(self.statuses.values())

    @property
    def success_rate(self) -> float | None:
        return self.statuses["succeeded"] / self.finished if self.finished else None

    def run_ms(self, fraction: float) -> float | None:
        return percentile_ms(self.duration, fraction)

    def wait_ms(self, fraction: float) -> float | None:
        return percentile_ms(self.wait, fraction)
