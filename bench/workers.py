"""The benchmark's workers: the peers' work (one insert per item), loaded through Worker:Modules,
in the one-event form and in the batch form (one bulk insert per call).

An attempt that finds its item stored already (an earlier attempt of the same run stored it
before its outcome was written) counts it as done: the insert is the whole effect."""

from typing import Any

from pydantic import BaseModel, Field
from pymongo.errors import BulkWriteError, DuplicateKeyError

from app.workers import BatchContext, JobContext, registry

TOPIC = "bench-items"
COLLECTION = "bench_items"
BATCH_TOPIC = "bench-batch-items"
BATCH_COLLECTION = "bench_batch_items"
TICK_JOB = "bench_tick"
_DUPLICATE_KEY = 11000


class BenchItem(BaseModel):
    item_id: str = Field(min_length=1, max_length=200)


@registry.queue_processor(topic=TOPIC, payload=BenchItem, concurrency=16, name="BenchInsert")
async def insert_bench_item(item: BenchItem, ctx: JobContext) -> dict[str, Any]:
    try:
        await ctx.db[COLLECTION].insert_one({"_id": item.item_id})
    except DuplicateKeyError:
        return {"inserted": False}
    return {"inserted": True}


@registry.batch_handler(topic=BATCH_TOPIC, payload=BenchItem, name="BenchBatchInsert")
async def insert_bench_items(items: list[BenchItem], ctx: BatchContext) -> None:
    try:
        await ctx.db[BATCH_COLLECTION].insert_many(
            [{"_id": item.item_id} for item in items], ordered=False
        )
    except BulkWriteError as exc:
        if any(error["code"] != _DUPLICATE_KEY for error in exc.details["writeErrors"]):
            raise


@registry.scheduled(cron="* * * * * *", binding="bench-tick-cron", name=TICK_JOB, max_attempts=1)
async def bench_tick(ctx: JobContext) -> dict[str, Any]:
    """Fired on each whole second while the benchmark runs: its runs give tick-to-start
    latency under the benchmark's load."""
    return {"instance": ctx.instance}
