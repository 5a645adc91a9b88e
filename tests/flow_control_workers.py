"""Jobs with limits across instances, for the e2e test of flow control
(tests/e2e/test_flow_control.py). A module of its own, loaded by that test only
(Worker:Modules): their topics and bindings exist only in that test's deployment.

Each run records its span (start, end, instance) in `SPANS`, so that the test can count how
many ran at once, per job and per key."""

import asyncio

from pydantic import BaseModel

from app.core.clock import utc_now
from app.workers import JobContext, Overlap, registry

SPANS = "test_flow_spans"
CAPPED_TOPIC = "flow-capped"
TENANT_TOPIC = "flow-tenants"
RATED_TOPIC = "flow-rated"
CAPPED_MAX_RUNNING = 2
RATE_COUNT, RATE_PERIOD_SECONDS = 20, 15
OVERLAP_BINDINGS: dict[Overlap, str] = {
    "skip": "overlap-skip-cron",
    "buffer_one": "overlap-buffer-cron",
}
OVERLAP_HOLD_SECONDS = 2.5


class Work(BaseModel):
    key: str
    tenant: str = ""
    hold_ms: int = 200


async def record_span(job: str, ctx: JobContext, hold_seconds: float, work: Work | None) -> None:
    start = utc_now()
    await asyncio.sleep(hold_seconds)
    await ctx.db[SPANS].insert_one(
        {
            "job": job,
            "run_id": ctx.run_id,
            "key": work.key if work else None,
            "tenant": work.tenant if work else None,
            "start": start,
            "end": utc_now(),
            "instance": ctx.instance,
        }
    )


@registry.queue_processor(
    topic=CAPPED_TOPIC, payload=Work, concurrency=4, name="capped", max_running=CAPPED_MAX_RUNNING
)
async def capped(work: Work, ctx: JobContext) -> None:
    await record_span("capped", ctx, work.hold_ms / 1000, work)


@registry.event_handler(
    topic=TENANT_TOPIC, payload=Work, name="per_tenant", concurrency_key="tenant", max_running=1
)
async def per_tenant(work: Work, ctx: JobContext) -> None:
    await record_span("per_tenant", ctx, work.hold_ms / 1000, work)


@registry.event_handler(
    topic=RATED_TOPIC,
    payload=Work,
    name="rated",
    rate_limit=f"{RATE_COUNT}/{RATE_PERIOD_SECONDS}s",
)
async def rated(work: Work, ctx: JobContext) -> None:
    await record_span("rated", ctx, 0, work)


def overlap_job(policy: Overlap) -> str:
    return f"overlap_{policy}"


async def slow_tick(ctx: JobContext) -> None:
    await record_span(ctx.job, ctx, OVERLAP_HOLD_SECONDS, None)


for policy, binding in OVERLAP_BINDINGS.items():
    registry.scheduled(
        cron="@every 1s", binding=binding, name=overlap_job(policy), overlap=policy, max_attempts=1
    )(slow_tick)
