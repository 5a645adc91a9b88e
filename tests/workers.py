"""Workers for the tests, loaded into the app through the setting Worker:Modules, as any team's
worker module would be. They fail on purpose, on a plan the test gives in the payload."""

import asyncio
import contextlib
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field
from pymongo import ReplaceOne
from pymongo.errors import DuplicateKeyError

from app.db.upserts import upserted
from app.workers import (
    BatchContext,
    Flow,
    GiveUp,
    JobContext,
    RetryLater,
    StepFailed,
    Steps,
    registry,
)
from app.workers.builtin.message_queue import WorkItem, process_work_item

FLAKY_TOPIC = "flaky-events"


class FailurePlan(BaseModel):
    key: str = Field(min_length=1)
    fail_times: int = Field(0, ge=0)
    """The first `fail_times` attempts for this key raise; later ones succeed."""
    sleep_ms: int = Field(0, ge=0)


async def _attempt_number(ctx: JobContext, key: str) -> int:
    document = await upserted(ctx.db["test_attempts"], {"_id": key}, {"$inc": {"attempts": 1}})
    return int(document["attempts"])


async def _follow(plan: FailurePlan, ctx: JobContext) -> dict[str, Any]:
    number = await _attempt_number(ctx, plan.key)
    if plan.sleep_ms:
        await asyncio.sleep(plan.sleep_ms / 1000)
    if number <= plan.fail_times:
        raise RuntimeError(f"planned failure {number} of {plan.fail_times} for {plan.key}")
    await ctx.db["test_completions"].update_one(
        {"_id": plan.key}, {"$inc": {"completions": 1}}, upsert=True
    )
    return {"key": plan.key, "attempts_seen": number}


@registry.manual(payload=FailurePlan, name="flaky_job", retry_base_seconds=0.05)
async def flaky_job(plan: FailurePlan, ctx: JobContext) -> dict[str, Any]:
    """Fails the first `fail_times` attempts of its key."""
    return await _follow(plan, ctx)


@registry.event_handler(
    topic=FLAKY_TOPIC, payload=FailurePlan, name="flaky_event_handler", retry_base_seconds=0.05
)
async def flaky_event_handler(plan: FailurePlan, ctx: JobContext) -> dict[str, Any]:
    """Fails the first `fail_times` deliveries of its key."""
    return await _follow(plan, ctx)


@registry.manual(name="doomed_job")
async def doomed_job(ctx: JobContext) -> None:
    """Gives up at once: a failure retrying cannot fix."""
    raise GiveUp("the configuration this job needs is missing")


@registry.manual(name="deferring_job", max_attempts=5)
async def deferring_job(ctx: JobContext) -> None:
    """Asks for its next attempt an hour later, every time."""
    raise RetryLater("the partner system asked us to come back in an hour", defer_seconds=3600)


SLOW_QUEUE_TOPIC = "slow-queue"


class SlowItem(BaseModel):
    item_id: str
    sleep_ms: int = 200


class _Gauge:
    """How many handlers of one worker run at once in this process, and the most seen."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0


slow_queue_gauge = _Gauge()


@registry.queue_processor(
    topic=SLOW_QUEUE_TOPIC, payload=SlowItem, concurrency=2, name="slow_queue"
)
async def slow_queue(item: SlowItem, ctx: JobContext) -> dict[str, Any]:
    """Takes its time, and records how many of it ran at once."""
    slow_queue_gauge.now += 1
    slow_queue_gauge.most = max(slow_queue_gauge.most, slow_queue_gauge.now)
    try:
        await asyncio.sleep(item.sleep_ms / 1000)
    finally:
        slow_queue_gauge.now -= 1
    return {"item_id": item.item_id, "most_at_once": slow_queue_gauge.most}


@registry.scheduled(cron="@every 1s", binding="scale-tick-cron", name="scale_tick", max_attempts=1)
async def scale_tick(ctx: JobContext) -> dict[str, Any]:
    """Fired each second by every instance's binding; one run per tick must result."""
    return {"instance": ctx.instance}


BUFFERED_TICK_BINDING = "buffered-tick-cron"


@registry.scheduled(
    cron="@every 1h",
    binding=BUFFERED_TICK_BINDING,
    name="buffered_tick",
    overlap="buffer_one",
    max_attempts=1,
)
async def buffered_tick(ctx: JobContext) -> None:
    """A tick job that keeps one run waiting behind the running one; fired by the tests alone
    (no component), with firing times of their choosing."""


ORDERED_TOPIC = "ordered-events"


class LedgerEntry(BaseModel):
    account: str
    seq: int
    sleep_ms: int = 50


@registry.event_handler(
    topic=ORDERED_TOPIC, payload=LedgerEntry, ordered_by="account", name="ordered_ledger"
)
async def ordered_ledger(entry: LedgerEntry, ctx: JobContext) -> dict[str, Any]:
    """Appends to an account's ledger, and records how many entries of it were in flight at
    once, across all instances."""
    return await _append_to_ledger(entry, ctx, ctx.db["test_ledgers"])


KEYED_TOPIC = "keyed-events"


@registry.event_handler(topic=KEYED_TOPIC, payload=LedgerEntry, name="keyed_ledger")
async def keyed_ledger(entry: LedgerEntry, ctx: JobContext) -> dict[str, Any]:
    """The same ledger with no `ordered_by`: no key sequencer, whatever order the broker
    delivers in (on Kafka, a partition key's)."""
    return await _append_to_ledger(entry, ctx, ctx.db["test_keyed_ledgers"])


async def _append_to_ledger(entry: LedgerEntry, ctx: JobContext, accounts: Any) -> dict[str, Any]:
    document = await upserted(accounts, {"_id": entry.account}, {"$inc": {"in_flight": 1}})
    await accounts.update_one(
        {"_id": entry.account}, {"$max": {"most_in_flight": document["in_flight"]}}
    )
    await asyncio.sleep(entry.sleep_ms / 1000)
    await accounts.update_one(
        {"_id": entry.account},
        {"$inc": {"in_flight": -1}, "$push": {"entries": entry.seq, "instances": ctx.instance}},
    )
    return {"account": entry.account, "seq": entry.seq}


SINGLE_FILE_TOPIC = "single-file-queue"


@registry.queue_processor(
    topic=SINGLE_FILE_TOPIC,
    payload=FailurePlan,
    concurrency=1,
    name="single_file_queue",
    max_attempts=2,
)
async def single_file_queue(plan: FailurePlan, ctx: JobContext) -> dict[str, Any]:
    """One item at a time per instance; items queue behind a slow one."""
    return await _follow(plan, ctx)


class Opaque:
    """Nothing a run document can hold."""


class ResultPlan(BaseModel):
    kind: str = "convertible"


@registry.manual(payload=ResultPlan, name="odd_result_job", max_attempts=1)
async def odd_result_job(plan: ResultPlan, ctx: JobContext) -> Any:
    """Returns what BSON cannot encode as it is: convertible values, or an opaque object."""
    if plan.kind == "opaque":
        return {"thing": Opaque()}
    return {"total": Decimal("12.50"), "day": date(2026, 11, 29), "tags": {"vip"}}


@registry.manual(
    payload=FailurePlan,
    name="hanging_job",
    max_attempts=2,
    timeout_seconds=0.5,
    retry_base_seconds=0.05,
)
async def hanging_job(plan: FailurePlan, ctx: JobContext) -> dict[str, Any]:
    """Counts its attempt, then hangs (an awaited call with no timeout of its own)."""
    await _attempt_number(ctx, plan.key)
    await asyncio.Event().wait()
    return {"key": plan.key}


BATCH_TOPIC = "batched-items"
batch_calls: list[int] = []  # the number of items in each call, in order


class BatchedItem(BaseModel):
    item_id: str
    fail_attempts: int = 0  # its first attempts fail (and with them, their whole batch)
    hang_attempts: int = 0  # its first attempts hang (the call times out)


@registry.batch_handler(
    topic=BATCH_TOPIC,
    payload=BatchedItem,
    max_batch=8,
    name="batched_items",
    retry_base_seconds=0.05,
    timeout_seconds=1.5,
)
async def batched_items(items: list[BatchedItem], ctx: BatchContext) -> list[dict[str, Any]]:
    """Stores its items with one bulk call."""
    batch_calls.append(len(items))
    attempts = [context.attempt for context in ctx.contexts]
    if any(attempt <= item.hang_attempts for item, attempt in zip(items, attempts, strict=True)):
        await asyncio.Event().wait()
    if any(attempt <= item.fail_attempts for item, attempt in zip(items, attempts, strict=True)):
        raise RuntimeError("an item of this batch asked to fail")
    await ctx.db["batched_items"].bulk_write(
        [
            ReplaceOne({"_id": item.item_id}, {"run_id": run_id}, upsert=True)
            for item, run_id in zip(items, ctx.run_ids, strict=True)
        ]
    )
    return [{"item_id": item.item_id} for item in items]


class ChunkPlan(BaseModel):
    chunks: int = Field(10, ge=1, le=1000)
    chunk_ms: int = Field(300, ge=0)


@registry.data_processor(chunk_size=1, payload=ChunkPlan, name="chunked_job", max_attempts=1)
async def chunked_job(plan: ChunkPlan, ctx: JobContext) -> dict[str, Any]:
    """Works through `chunks` chunks, each taking `chunk_ms`, reporting progress after each."""
    start = int(ctx.checkpoint or 0)
    for done in range(start + 1, plan.chunks + 1):
        await asyncio.sleep(plan.chunk_ms / 1000)
        await ctx.chunk_done(checkpoint=done, done=done, total=plan.chunks)
    return {"chunks": plan.chunks}


@registry.section("TestGreeting")
class GreetingSettings(BaseModel):
    """A worker module's own settings section (appsettings.json `TestGreeting`, or the
    environment: `TestGreeting__Times=3`)."""

    greeting: str = Field("hello", alias="Greeting", min_length=1)
    times: int = Field(1, alias="Times", ge=1, le=10)


@registry.manual(name="greeting_job", max_attempts=1)
async def greeting_job(ctx: JobContext) -> dict[str, Any]:
    """Answers with its module's settings, as the app read them at start-up."""
    section = ctx.section(GreetingSettings)
    return {"greeting": section.greeting, "times": section.times}


# -- workflows -------------------------------------------------------------------------------

WORKFLOW_PIECES = "workflow_pieces"


class Piece(BaseModel):
    index: int = Field(ge=0)
    delay_ms: int = Field(0, ge=0, le=60_000)
    fail: bool = False
    """Give up: the step is dead at once."""
    crash: bool = False
    """Raise an ordinary error: the step is retried up to its job's max_attempts, then dead."""


@registry.manual(payload=Piece, name="workflow_piece", max_attempts=2, retry_base_seconds=0.05)
async def workflow_piece(piece: Piece, ctx: JobContext) -> dict[str, Any]:
    """A workflow's step: waits, then applies its effect once per run (keyed by the run id)."""
    await asyncio.sleep(piece.delay_ms / 1000)
    if piece.fail:
        raise GiveUp(f"piece {piece.index} fails, as planned")
    if piece.crash:
        raise RuntimeError(f"piece {piece.index} fails, as planned, at each attempt")
    # A second attempt of this run (after a crash) finds its effect applied already.
    with contextlib.suppress(DuplicateKeyError):
        await ctx.db[WORKFLOW_PIECES].insert_one(
            {"_id": ctx.run_id, "index": piece.index, "instance": ctx.instance}
        )
    return {"index": piece.index}


class FanOut(BaseModel):
    width: int = Field(10, ge=1, le=500)
    delay_ms: int = Field(0, ge=0, le=60_000)


@registry.workflow(payload=FanOut, name="fan_out_workflow")
def fan_out_workflow(plan: FanOut, flow: Flow) -> Steps:
    """One step, then `width` steps at once, then their indexes."""
    first = yield flow.step(workflow_piece, Piece(index=0, delay_ms=plan.delay_ms), name="first")
    pieces = yield flow.all(
        [
            flow.step(workflow_piece, Piece(index=i, delay_ms=plan.delay_ms), name=f"piece {i}")
            for i in range(1, plan.width + 1)
        ]
    )
    return {"first": first["index"], "indexes": sorted(piece["index"] for piece in pieces)}


class Chain(BaseModel):
    length: int = Field(3, ge=1, le=100)
    delay_ms: int = Field(0, ge=0, le=60_000)


@registry.workflow(payload=Chain, name="chain_workflow")
def chain_workflow(plan: Chain, flow: Flow) -> Steps:
    """`length` steps in turn, each after the one before."""
    indexes = []
    for n in range(plan.length):
        piece = Piece(index=n, delay_ms=plan.delay_ms)
        done = yield flow.step(workflow_piece, piece, name=f"link {n}")
        indexes.append(done["index"])
    return {"indexes": indexes}


@registry.workflow(name="approval_workflow")
def approval_workflow(flow: Flow) -> Steps:
    """Waits for an approval (its data names the piece to apply), then applies it."""
    flow.set_status("waiting for approval")
    approval = yield flow.wait_for_event("approval", timeout=timedelta(minutes=10))
    applied = yield flow.step(workflow_piece, Piece(index=int(approval["index"])))
    return {"approved_by": approval["by"], "applied": applied["index"]}


WORKFLOW_FIXES = "workflow_fixes"


class Blocked(BaseModel):
    index: int = Field(ge=0)


@registry.manual(payload=Blocked, name="blocked_piece", max_attempts=1)
async def blocked_piece(piece: Blocked, ctx: JobContext) -> dict[str, Any]:
    """A step that fails until its cause is fixed: a document for its index in
    `workflow_fixes`, as an operator would fix a missing record before a re-run."""
    if await ctx.db[WORKFLOW_FIXES].find_one({"_id": piece.index}) is None:
        raise GiveUp(f"piece {piece.index} is blocked: {WORKFLOW_FIXES} has nothing for it")
    return {"index": piece.index}


@registry.workflow(payload=Blocked, name="blocked_workflow")
def blocked_workflow(plan: Blocked, flow: Flow) -> Steps:
    """A step that succeeds, then one that fails (uncaught: the workflow fails) until fixed."""
    yield flow.step(workflow_piece, Piece(index=plan.index), name="before")
    done = yield flow.step(blocked_piece, plan, name="blocked")
    return {"done": done["index"]}


TALLY_CHUNKS = "tally_chunks"


class Tally(BaseModel):
    upto: int = Field(ge=1, le=100_000)
    per_chunk: int = Field(10, ge=1)


class TallyChunk(BaseModel):
    start: int = Field(ge=1)
    stop: int = Field(ge=1)


@registry.manual(payload=TallyChunk, name="tally_chunk", max_attempts=2)
async def tally_chunk(part: TallyChunk, ctx: JobContext) -> dict[str, Any]:
    """A chunk of the fan-out: the sum of its numbers, recorded once per run."""
    with contextlib.suppress(DuplicateKeyError):
        await ctx.db[TALLY_CHUNKS].insert_one(
            {"_id": ctx.run_id, "start": part.start, "instance": ctx.instance}
        )
    return {"sum": sum(range(part.start, part.stop))}


@registry.fan_out(payload=Tally, chunk=tally_chunk, name="tally_fan_out")
async def plan_tally(job: Tally, ctx: JobContext) -> list[TallyChunk]:
    """Sums 1..upto in chunks of `per_chunk`, fanned out over the instances."""
    starts = range(1, job.upto + 1, job.per_chunk)
    return [TallyChunk(start=s, stop=min(s + job.per_chunk, job.upto + 1)) for s in starts]


WORKFLOW_TOPIC = "workflow-starts"


@registry.activity(max_attempts=2)
async def double_piece(piece: Piece) -> dict[str, Any]:
    """A plain activity: a function of its payload, without a job context."""
    return {"doubled": piece.index * 2}


@registry.workflow(payload=Piece, topic=WORKFLOW_TOPIC, name="event_workflow")
def event_workflow(piece: Piece, flow: Flow) -> Steps:
    """Started by each CloudEvent on its topic (or a schedule): applies the piece it names,
    then doubles its index in a plain activity."""
    applied = yield flow.step(workflow_piece, piece, name="apply")
    doubled = yield flow.step(double_piece, piece, name="double")
    return {"applied": applied["index"], "doubled": doubled["doubled"]}


WORKFLOW_TICK_BINDING = "flow-tick-cron"


@registry.workflow(cron="@every 5s", binding=WORKFLOW_TICK_BINDING, name="ticking_workflow")
def ticking_workflow(flow: Flow) -> Steps:
    """Started by a cron binding's ticks (bound in the workflow tests' deployments only): one
    plain activity, with no effect of its own."""
    doubled = yield flow.step(double_piece, Piece(index=21), name="double")
    return {"doubled": doubled["doubled"]}


@registry.workflow(name="compensating_workflow")
def compensating_workflow(flow: Flow) -> Steps:
    """A step that fails; the workflow catches it and runs a compensating step."""
    try:
        yield flow.step(workflow_piece, Piece(index=1, crash=True), name="doomed")
    except StepFailed as failed:
        undone = yield flow.step(workflow_piece, Piece(index=2), name="compensation")
        return {"compensated": undone["index"], "because": str(failed)[:200]}
    return {"compensated": None}


PAUSABLE_TOPIC = "pausable-queue"
PAUSABLE_ORDER = "test_pausable_order"


class Numbered(BaseModel):
    series: str
    n: int


@registry.queue_processor(
    topic=PAUSABLE_TOPIC, payload=Numbered, concurrency=1, name="pausable_queue"
)
async def pausable_queue(item: Numbered, ctx: JobContext) -> dict[str, Any]:
    """Appends its number to its series, in the order the items run."""
    await ctx.db[PAUSABLE_ORDER].update_one(
        {"_id": item.series}, {"$push": {"order": item.n}}, upsert=True
    )
    return {"n": item.n}


@registry.manual(name="one_at_a_time", max_running=1)
async def one_at_a_time(ctx: JobContext) -> None:
    """Limited across instances: its runs pass the FlowGate actor first."""


SLOW_GATED_JOB = "slow_gated_job"


class Pause(BaseModel):
    seconds: float = Field(ge=0, le=60)


@registry.manual(payload=Pause, name=SLOW_GATED_JOB, max_running=1, max_attempts=1)
async def slow_gated_job(pause: Pause, ctx: JobContext) -> None:
    """Limited across instances, and long: it holds its place at the FlowGate while it runs."""
    await asyncio.sleep(pause.seconds)


@registry.manual(name="exclusive_job", overlap="skip", max_attempts=1)
async def exclusive_job(ctx: JobContext) -> None:
    """A job a Jobs API schedule fires, never two runs at once: a firing meanwhile is skipped."""


BULK_WORK_QUEUE = "work-items-bulk"


@registry.queue_processor(
    topic=BULK_WORK_QUEUE,
    payload=WorkItem,
    concurrency=4,
    name="bulk_work_queue",
    bulk=True,
)
async def bulk_work_queue(item: WorkItem, ctx: JobContext) -> object:
    """The work-items queue's handler on a bulk-subscribed topic (the fault suite runs both)."""
    return await process_work_item(item, ctx)
