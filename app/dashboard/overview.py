"""What the overview page shows: run counts, the throughput chart, latency percentiles per job
and the live instances, read from indexed counts, the run statistics and the heartbeats."""

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from markupsafe import Markup

from app.dashboard.charts import Bucket, throughput_chart
from app.observability.tally import Tally
from app.repositories.instances import InstanceBeat, InstanceRepository
from app.repositories.run_counts import RunCounts
from app.repositories.run_stats import RunStatsRepository

Window = Literal["hour", "day"]
_WINDOWS: dict[Window, tuple[Literal["minute", "hour"], timedelta, int]] = {
    "hour": ("minute", timedelta(minutes=1), 60),
    "day": ("hour", timedelta(hours=1), 24),
}
FAILED_OUTCOMES = ("failed", "dead", "cancelled")


@dataclass
class Overview:
    window: Window
    counts: dict[str, int]
    finished: Counter[str]
    chart: Markup
    jobs: list[Tally]
    instances: list[InstanceBeat]


# How old the counts on a page may be: a live stream refreshes them every two seconds.
COUNTS_MAX_AGE_SECONDS = 2.0


async def live_counts(counts: RunCounts) -> dict[str, int]:
    """Runs waiting, running, retrying, and the dead set."""
    return await counts.get(max_age_seconds=COUNTS_MAX_AGE_SECONDS)


async def job_figures(
    run_stats: RunStatsRepository, *, window: Window, now: datetime
) -> list[Tally]:
    stats = await _stats_of(run_stats, window, now)
    return list(_per_job(stats).values())


async def build_overview(
    *,
    run_stats: RunStatsRepository,
    counts: RunCounts,
    instances: InstanceRepository,
    live_since: datetime,
    window: Window,
    now: datetime,
) -> Overview:
    stats = await _stats_of(run_stats, window, now)
    _, step, count = _WINDOWS[window]
    first = _floor(now, step) - step * (count - 1)
    by_start: dict[datetime, Counter[str]] = defaultdict(Counter)
    finished: Counter[str] = Counter()
    for period in stats:
        by_start[period.start].update(period.statuses)
        finished.update(period.statuses)
    buckets = []
    for i in range(count):
        start = first + step * i
        statuses = by_start.get(start, Counter())
        failed = sum(statuses[s] for s in FAILED_OUTCOMES)
        buckets.append(Bucket(start=start, succeeded=statuses["succeeded"], failed=failed))
    label = f"Finished attempts per {'minute' if window == 'hour' else 'hour'}, last {window}"
    return Overview(
        window=window,
        counts=await live_counts(counts),
        finished=finished,
        chart=throughput_chart(buckets, label=label),
        jobs=sorted(_per_job(stats).values(), key=lambda j: -j.finished),
        instances=await instances.seen_since(live_since),
    )


async def _stats_of(run_stats: RunStatsRepository, window: Window, now: datetime) -> list[Tally]:
    period, step, count = _WINDOWS[window]
    return await run_stats.since(period=period, start=_floor(now, step) - step * (count - 1))


def _per_job(stats: list[Tally]) -> dict[str, Tally]:
    jobs: dict[str, Tally] = {}
    for period in stats:
        jobs.setdefault(period.job, Tally(job=period.job, kind=period.kind, start=period.start))
        jobs[period.job].merge(period)
    return jobs


def _floor(moment: datetime, step: timedelta) -> datetime:
    if step >= timedelta(hours=1):
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(second=0, microsecond=0)
