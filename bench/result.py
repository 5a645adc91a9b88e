"""One configuration's figures in a benchmark run."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    name: str
    events_per_second: float
    cpu_ms_per_event: dict[str, float]
    """CPU milliseconds per event of each group of processes (app, daprd, worker, database)."""
    database_requests_per_event: float
    """Round trips to the database server per event, over the measured window."""
