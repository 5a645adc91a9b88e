"""Deletes finished runs older than the retention setting (Worker:RunRetentionDays)."""

from datetime import timedelta
from typing import Any

from app.core.clock import utc_now
from app.repositories.runs import RunRepository
from app.workers import JobContext, registry


@registry.scheduled(cron="0 30 3 * * *", binding="history-cleanup-cron", name="history_cleanup")
async def clean_up_history(ctx: JobContext) -> dict[str, Any]:
    """Deletes the finished runs older than Worker:RunRetentionDays; unfinished ones stay."""
    cutoff = utc_now() - timedelta(days=ctx.settings.worker.run_retention_days)
    deleted = await RunRepository(ctx.db).delete_finished_before(cutoff=cutoff)
    ctx.log.bind(deleted=deleted, cutoff=cutoff.isoformat()).info("run history cleaned up")
    return {"deleted": deleted, "cutoff": cutoff.isoformat()}
