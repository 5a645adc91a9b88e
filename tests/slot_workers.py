"""A queue processor of one slot (`concurrency=1`) whose handler touches no database and calls
the hooks a test sets as it ends, for the test that a job's slot is its handler's alone
(tests/integration/test_concurrency_slot.py). Registered when that test module imports it."""

from collections.abc import Callable

from pydantic import BaseModel

from app.workers import JobContext, registry

ONE_SLOT_TOPIC = "one-slot-queue"
started: list[str] = []
"""The keys whose handler started, in order."""
after_handler: list[Callable[[], None]] = []
"""Called as each handler ends."""


class SlotItem(BaseModel):
    key: str


@registry.queue_processor(
    topic=ONE_SLOT_TOPIC, payload=SlotItem, concurrency=1, name="one_slot_queue", bulk=True
)
async def one_slot_queue(item: SlotItem, ctx: JobContext) -> None:
    started.append(item.key)
    for hook in after_handler:
        hook()
