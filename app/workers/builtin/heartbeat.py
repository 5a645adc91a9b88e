"""A scheduled job fired by the `heartbeat-cron` binding: proof that cron ticks reach the worker."""

from typing import Any

from app.workers.context import JobContext
from app.workers.registry import registry


@registry.scheduled(binding="heartbeat-cron", name="heartbeat")
async def heartbeat(ctx: JobContext) -> dict[str, Any]:
    return {
        "instance": ctx.instance,
        "tick": ctx.trigger.tick.isoformat() if ctx.trigger.tick else None,
    }
