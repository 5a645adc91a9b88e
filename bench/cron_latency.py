"""Cron tick to run start: how long after its tick was due each run of the benchmark's
every-second cron job started, read from the runs of a deployment under the benchmark's load."""

import statistics
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from bench.workers import TICK_JOB


async def tick_to_start_ms(
    db: AsyncDatabase[dict[str, Any]], *, since: datetime
) -> dict[str, float]:
    """p50 and the largest of (started_at - tick) over the job's runs of ticks since `since`,
    in ms, and their number."""
    delays = [
        (run["started_at"] - run["trigger"]["tick"]).total_seconds() * 1000
        async for run in db["job_runs"].find(
            {"job": TICK_JOB, "started_at": {"$ne": None}, "trigger.tick": {"$gte": since}},
            {"started_at": 1, "trigger.tick": 1},
        )
    ]
    if len(delays) < 2:
        return {"runs": len(delays)}
    return {
        "runs": len(delays),
        "p50": round(statistics.median(delays), 1),
        "max": round(max(delays), 1),
    }
