"""One configuration's figures in a benchmark run."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Result:
    name: str
    events_per_second: float
    cpu_ms_per_event: dict[str, float]
    """CPU milliseconds per event of each group of processes (app, daprd, worker, database)."""
    database_requests_per_event: float
    """Round trips to the database server per event, over the measured window."""
    latency_ms: dict[str, float] = field(default_factory=dict)
    """Publish-to-applied p50 and p99 at the offered rate (ours, one instance)."""
    cron_ms: dict[str, float] = field(default_factory=dict)
    """Cron tick to run start over the run (ours): p50, max and the number of ticks."""
    rss_mb: float | None = None
    """The largest resident set of one worker process at the end of the run."""
