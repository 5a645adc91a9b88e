"""MessageQueueProcessor: competing consumers on the `work-items` topic.

Every instance subscribes with the same app id, so Dapr hands each message to one of them; at
most `concurrency` messages are processed at once per instance.
"""

from typing import Any

from pydantic import BaseModel, Field

from app.repositories.work_items import WorkItemRepository
from app.workers import JobContext, registry

TOPIC = "work-items"


class WorkItem(BaseModel):
    item_id: str = Field(min_length=1, max_length=200)
    kind: str = Field("default", max_length=100)
    data: dict[str, Any] = Field(default_factory=dict)


@registry.queue_processor(
    topic=TOPIC, payload=WorkItem, concurrency=4, name="MessageQueueProcessor"
)
async def process_work_item(item: WorkItem, ctx: JobContext) -> dict[str, Any]:
    """Processes one work item from the `work-items` queue and records the outcome."""
    times = await WorkItemRepository(ctx.db).mark_processed(
        item_id=item.item_id,
        kind=item.kind,
        data=item.data,
        run_id=ctx.run_id,
        instance=ctx.instance,
        at=ctx.started_at,
    )
    return {"item_id": item.item_id, "times_processed": times}
