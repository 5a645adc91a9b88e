"""ScheduledReportWorker: the daily report of the previous day's runs.

Counts by job and status, p50 and p95 durations per job, and the most frequent errors; stored
in `reports` as `daily-runs:<date>`, replaced when the report for that day runs again.
"""

import datetime as dt
import math
from collections import Counter, defaultdict
from datetime import UTC, datetime, time, timedelta
from typing import Any

from pydantic import BaseModel

from app.core.clock import utc_now
from app.repositories.reports import ReportRepository
from app.repositories.runs import RunRepository
from app.workers import JobContext, registry

TOP_ERRORS = 10


class ReportRequest(BaseModel):
    date: dt.date | None = None
    """The day to report (UTC); by default the day before the run."""


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of values sorted ascending."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(round(len(sorted_values) * fraction, 9)))
    return sorted_values[rank - 1]


def build_report(runs: list[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    durations: dict[str, list[float]] = defaultdict(list)
    errors: Counter[tuple[str, str, str]] = Counter()
    for run in runs:
        job = run["job"]
        counts[job][run["status"]] += 1
        if run.get("duration_ms") is not None:
            durations[job].append(float(run["duration_ms"]))
        error = run.get("error")
        if error:
            errors[(job, error.get("type", ""), error.get("message", "")[:300])] += 1
    by_job = {}
    for job in sorted(counts):
        values = sorted(durations[job])
        by_job[job] = {
            "runs": sum(counts[job].values()),
            "by_status": dict(sorted(counts[job].items())),
            "p50_ms": percentile(values, 0.50),
            "p95_ms": percentile(values, 0.95),
        }
    return {
        "total_runs": len(runs),
        "by_job": by_job,
        "top_errors": [
            {"job": job, "type": kind, "message": message, "count": count}
            for (job, kind, message), count in errors.most_common(TOP_ERRORS)
        ],
    }


@registry.scheduled(
    cron="0 5 0 * * *",
    binding="scheduled-report-cron",
    payload=ReportRequest,
    name="ScheduledReportWorker",
)
async def write_daily_report(request: ReportRequest, ctx: JobContext) -> dict[str, Any]:
    """Writes the report of a day's finished runs (by default, yesterday's)."""
    day = request.date or (ctx.started_at.astimezone(UTC).date() - timedelta(days=1))
    start = datetime.combine(day, time.min, tzinfo=UTC)
    runs = await RunRepository(ctx.db).finished_between(start=start, end=start + timedelta(days=1))
    report = build_report(runs)
    report_id = f"daily-runs:{day.isoformat()}"
    await ReportRepository(ctx.db).save(
        report_id=report_id,
        report={**report, "date": day.isoformat(), "generated_at": utc_now(), "run_id": ctx.run_id},
    )
    return {"report_id": report_id, "total_runs": report["total_runs"]}
