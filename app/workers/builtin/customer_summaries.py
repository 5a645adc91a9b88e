"""A data processor: recomputes every customer's order summary, a chunk of customers at a time.

Progress and the last customer id of each chunk are saved as the run's checkpoint; a run whose
instance died resumes after that customer. Summaries are written once per run, so a chunk
replayed after a crash (between its writes and its checkpoint) is not applied twice.
"""

import asyncio
from typing import Any

from pydantic import BaseModel, Field

from app.core.clock import utc_now
from app.repositories.customers import CustomerRepository
from app.workers import JobContext, registry


class RecomputeRequest(BaseModel):
    chunk_size: int | None = Field(None, ge=1, le=10_000)
    pause_ms: int = Field(0, ge=0, le=60_000)
    """A pause after each chunk, to spare the database during the day."""


@registry.data_processor(
    chunk_size=500, payload=RecomputeRequest, name="recompute_customer_summaries"
)
async def recompute_customer_summaries(
    request: RecomputeRequest, ctx: JobContext
) -> dict[str, Any]:
    """Recomputes order count and total per customer into `customer_summaries`."""
    customers = CustomerRepository(ctx.db)
    await customers.ensure_indexes()
    chunk_size = request.chunk_size or ctx.chunk_size or 500
    total = await customers.count()
    checkpoint: dict[str, Any] = ctx.checkpoint or {"after": None, "done": 0}
    if ctx.checkpoint:
        ctx.log.bind(checkpoint=checkpoint).info("resuming from checkpoint")
    while ids := await customers.ids_after(checkpoint["after"], limit=chunk_size):
        totals = await customers.order_totals(ids)
        summaries = {cid: totals.get(cid, {"orders": 0, "total_amount": 0}) for cid in ids}
        await customers.apply_summaries(summaries, run_id=ctx.run_id, at=utc_now())
        checkpoint = {"after": ids[-1], "done": checkpoint["done"] + len(ids)}
        await ctx.chunk_done(checkpoint=checkpoint, done=checkpoint["done"], total=total)
        if request.pause_ms:
            await asyncio.sleep(request.pause_ms / 1000)
    written = await customers.summaries_written_by(ctx.run_id)
    return {"customers": checkpoint["done"], "written": written, "total": total}
