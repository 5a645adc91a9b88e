"""An event handler that takes its own process down on the events that ask it to, for the e2e
test of poison messages (tests/e2e/test_poison_messages.py). A module of its own, loaded by that
test only (Worker:Modules)."""

import os

from pydantic import BaseModel

from app.workers import JobContext, registry

POISON_TOPIC = "poison-events"
APPLIED = "test_poison_applied"


class Dose(BaseModel):
    key: str
    kill: bool = False


@registry.event_handler(
    topic=POISON_TOPIC, payload=Dose, name="fragile_handler", max_attempts=2, retry_base_seconds=1
)
async def fragile_handler(dose: Dose, ctx: JobContext) -> None:
    if dose.kill:
        os._exit(13)  # as a segfault or an OOM kill would: no unwinding, no answer
    # Idempotent per run, as the engine asks of a handler (a run whose attempt died with its
    # process runs again): `runs` holds each run that applied the event once, `times` counts
    # every application.
    await ctx.db[APPLIED].update_one(
        {"_id": dose.key}, {"$inc": {"times": 1}, "$addToSet": {"runs": ctx.run_id}}, upsert=True
    )
