"""A scheduled job fired by the `heartbeat-cron` binding: shows that cron ticks reach the worker."""

from typing import Any

from app.workers import JobContext, registry


@registry.scheduled(cron="@every 2s", binding="heartbeat-cron", name="heartbeat", max_attempts=1)
async def heartbeat(ctx: JobContext) -> dict[str, Any]:
    """Records that this instance received a cron tick."""
    tick = ctx.trigger.tick.isoformat() if ctx.trigger.tick else None
    return {"instance": ctx.instance, "tick": tick}
