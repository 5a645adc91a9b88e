"""Three one-second cron jobs, one per `catch_up` policy, for the e2e test of ticks missed while
the database is away (tests/e2e/test_missed_ticks.py). A module of its own, loaded by that test
only (Worker:Modules): their bindings exist only in that test's deployment."""

from typing import Any

from app.workers import CatchUp, JobContext, registry

BINDINGS: dict[CatchUp, str] = {
    "latest": "missed-latest-cron",
    "all": "missed-all-cron",
    "none": "missed-none-cron",
}


def job_of(policy: CatchUp) -> str:
    return f"missed_{policy}"


async def tick(ctx: JobContext) -> dict[str, Any]:
    return {"instance": ctx.instance}


for policy, binding in BINDINGS.items():
    registry.scheduled(
        cron="@every 1s", binding=binding, name=job_of(policy), catch_up=policy, max_attempts=1
    )(tick)
