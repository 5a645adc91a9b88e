"""The benchmark's worker: the peers' work (one insert per item), loaded through Worker:Modules.

An attempt that finds its item stored already (an earlier attempt of the same run stored it
before its outcome was written) counts it as done: the insert is the whole effect."""

import os
import subprocess
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


def bench_item_event(item_id: str) -> dict[str, Any]:
    """An item as a CloudEvent whose id is the item's."""
    return {
        "specversion": "1.0",
        "id": item_id,
        "source": "bench",
        "type": "bench.item",
        "datacontenttype": "application/json",
        "data": {"item_id": item_id},
    }


def empty_stream() -> None:
    """Deletes the topic's Redis stream: a configuration's consumer group is new, and would read
    the stream from its start, an earlier configuration's items included."""
    port = os.environ.get("REDIS_PORT", "6379")
    subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", port, "DEL", TOPIC], check=True, capture_output=True
    )


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
