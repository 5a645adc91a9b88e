"""Two handlers that are not idempotent per run (an `$inc` per call), one transactional and one
not, for the exactly-once tests. A module of its own, added to Worker:Modules by those tests
only: an app with a transactional job needs a server that runs transactions."""

import asyncio
from typing import Any

from app.workers import JobContext, registry
from tests.tallies import (
    PLAIN_JOB,
    PLAIN_TOPIC,
    TALLIES,
    TRANSACTIONAL_JOB,
    TRANSACTIONAL_TOPIC,
    Tally,
    tally_id,
)


async def tally(item: Tally, ctx: JobContext) -> dict[str, Any]:
    """Counts each call (and who made it), then waits, then fails when the plan says so."""
    await ctx.db[TALLIES].update_one(
        {"_id": tally_id(ctx.job, item.key)},
        {"$inc": {"applied": 1}, "$push": {"by": f"{ctx.instance}#{ctx.attempt}"}},
        upsert=True,
    )
    await asyncio.sleep(item.hold_ms / 1000)
    if item.fail:
        raise RuntimeError(f"tally {item.key} fails after its write, as planned")
    return {"key": item.key, "attempt": ctx.attempt}


transactional_tally = registry.event_handler(
    topic=TRANSACTIONAL_TOPIC,
    payload=Tally,
    name=TRANSACTIONAL_JOB,
    transactional=True,
    max_attempts=3,
    retry_base_seconds=0.05,
)(tally)
plain_tally = registry.event_handler(
    topic=PLAIN_TOPIC, payload=Tally, name=PLAIN_JOB, max_attempts=3, retry_base_seconds=0.05
)(tally)
