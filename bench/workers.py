"""The benchmark's workers: the peers' work (one insert per item), loaded through Worker:Modules,
in the one-event form (on a topic delivered one event per request, and on a bulk-subscribed
one), in the batch form (one bulk insert per call), transactional (the
insert committed with the run's marker, once) and limited across instances (`max_running`).

An attempt that finds its item stored already (an earlier attempt of the same run stored it
before its outcome was written) counts it as done: the insert is the whole effect."""

import contextlib
from typing import Any

from pydantic import BaseModel, Field
from pymongo.errors import BulkWriteError, DuplicateKeyError

from app.workers import BatchContext, Flow, JobContext, Steps, registry

TOPIC = "bench-items"
COLLECTION = "bench_items"
BULK_TOPIC = "bench-bulk-items"
BULK_COLLECTION = "bench_bulk_items"
BATCH_TOPIC = "bench-batch-items"
BATCH_COLLECTION = "bench_batch_items"
TRANSACTIONAL_TOPIC = "bench-transactional-items"
TRANSACTIONAL_COLLECTION = "bench_transactional_items"
LIMITED_TOPIC = "bench-limited-items"
LIMITED_COLLECTION = "bench_limited_items"
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


@registry.queue_processor(
    topic=BULK_TOPIC, payload=BenchItem, concurrency=16, name="BenchBulkInsert", bulk=True
)
async def insert_bulk_delivered_item(item: BenchItem, ctx: JobContext) -> dict[str, Any]:
    """The one-event handler on a bulk-subscribed topic (`bulk=True`)."""
    try:
        await ctx.db[BULK_COLLECTION].insert_one({"_id": item.item_id})
    except DuplicateKeyError:
        return {"inserted": False}
    return {"inserted": True}


@registry.queue_processor(
    topic=TRANSACTIONAL_TOPIC,
    payload=BenchItem,
    concurrency=16,
    name="BenchTransactionalInsert",
    transactional=True,
)
async def insert_bench_item_once(item: BenchItem, ctx: JobContext) -> dict[str, Any]:
    """The same insert in a transaction with the run's marker (`transactional=True`)."""
    await ctx.db[TRANSACTIONAL_COLLECTION].insert_one({"_id": item.item_id})
    return {"inserted": True}


@registry.queue_processor(
    topic=LIMITED_TOPIC,
    payload=BenchItem,
    concurrency=16,
    name="BenchLimitedInsert",
    max_running=10_000,
)
async def insert_bench_item_limited(item: BenchItem, ctx: JobContext) -> dict[str, Any]:
    """The same insert under a limit across instances it never reaches (`max_running`): what
    asking the FlowGate actor costs, and the stored path a limited job's runs take."""
    try:
        await ctx.db[LIMITED_COLLECTION].insert_one({"_id": item.item_id})
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


# -- workflows: a chain of three steps, and a fan-out of ten --------------------------------

FLOW_STEPS = "bench_flow_steps"
FAN_OUT_WIDTH = 10


class FlowStep(BaseModel):
    flow: str = Field(min_length=1, max_length=200)
    step: int = Field(ge=0)


@registry.manual(payload=FlowStep, name="bench_flow_step")
async def bench_flow_step(step: FlowStep, ctx: JobContext) -> dict[str, Any]:
    """A workflow's step: one insert, keyed by its run (an attempt again finds it done)."""
    with contextlib.suppress(DuplicateKeyError):
        await ctx.db[FLOW_STEPS].insert_one({"_id": ctx.run_id, "flow": step.flow})
    return {"step": step.step}


class FlowPlan(BaseModel):
    flow: str = Field(min_length=1, max_length=200)


@registry.workflow(payload=FlowPlan, name="bench_chain")
def bench_chain(plan: FlowPlan, flow: Flow) -> Steps:
    """Three steps in turn."""
    for n in range(3):
        yield flow.step(bench_flow_step, FlowStep(flow=plan.flow, step=n), name=f"step {n}")
    return {"steps": 3}


@registry.workflow(payload=FlowPlan, name="bench_fan_out")
def bench_fan_out(plan: FlowPlan, flow: Flow) -> Steps:
    """Ten steps side by side, then their count."""
    done = yield flow.all(
        [
            flow.step(bench_flow_step, FlowStep(flow=plan.flow, step=n), name=f"piece {n}")
            for n in range(FAN_OUT_WIDTH)
        ]
    )
    return {"steps": len(done)}
