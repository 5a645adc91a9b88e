"""An event handler for the platform's domain events: each one is stored once, by its id."""

from typing import Any

from pydantic import RootModel

from app.repositories.domain_events import DomainEventRepository
from app.workers import JobContext, registry

TOPIC = "domain-events"


class DomainEventData(RootModel[dict[str, Any]]):
    """Any JSON object: the event's fields as its publisher wrote them."""


@registry.event_handler(topic=TOPIC, payload=DomainEventData, name="record_domain_event")
async def record_domain_event(event: DomainEventData, ctx: JobContext) -> dict[str, Any]:
    """Stores each domain event published on `domain-events`."""
    assert ctx.trigger.event_id is not None, "an event handler runs on a CloudEvent"
    stored = await DomainEventRepository(ctx.db).record(
        event_id=ctx.trigger.event_id,
        topic=ctx.trigger.topic or TOPIC,
        data=event.root,
        received_at=ctx.started_at,
        run_id=ctx.run_id,
    )
    return {"event_id": ctx.trigger.event_id, "stored": stored}
