"""The benchmark's worker: the peers' work (one insert per item), loaded through Worker:Modules.

An attempt that finds its item stored already (an earlier attempt of the same run stored it
before its outcome was written) counts it as done: the insert is the whole effect."""

from typing import Any

from pydantic import BaseModel, Field
from pymongo.errors import DuplicateKeyError

from app.workers.context import JobContext
from app.workers.registry import registry

TOPIC = "bench-items"
COLLECTION = "bench_items"
TICK_JOB = "bench_tick"


class BenchItem(BaseModel):
    item_id: str = Field(min_length=1, max_length=200)


@registry.queue_processor(topic=TOPIC, payload=BenchItem, concurrency=16, name="BenchInsert")
async def insert_bench_item(item: BenchItem, ctx: JobContext) -> dict[str, Any]:
    try:
        await ctx.db[COLLECTION].insert_one({"_id": item.item_id})
    except DuplicateKeyError:
        return {"inserted": False}
    return {"inserted": True}


@registry.scheduled(cron="* * * * * *", binding="bench-tick-cron", name=TICK_JOB, max_attempts=1)
async def bench_tick(ctx: JobContext) -> dict[str, Any]:
    """Fired on each whole second while the benchmark runs: its runs give tick-to-start
    latency under the benchmark's load."""
    return {"instance": ctx.instance}
