"""The overview page and its live counts."""

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from app.core.clock import utc_now
from app.dashboard.deps import CurrentSession
from app.dashboard.overview import Window, build_overview, live_counts
from app.dashboard.pages import render
from app.services import Counts, Heartbeats, Instances, Stats

router = APIRouter()
LIVE_INTERVAL_SECONDS = 2.0


@router.get("")
async def show_overview(
    *,
    request: Request,
    session: CurrentSession,
    stats: Stats,
    counts: Counts,
    instances: Instances,
    heartbeats: Heartbeats,
    window: Window = "hour",
) -> Response:
    """Counts by status, throughput and failures, latencies per job, live instances."""
    now = utc_now()
    overview = await build_overview(
        run_stats=stats,
        counts=counts,
        instances=instances,
        live_since=heartbeats.live_since(now),
        window=window,
        now=now,
    )
    return render(request, "overview.html", session, page="overview", overview=overview)


@router.get("/live/counts")
async def stream_counts(request: Request, session: CurrentSession, counts: Counts) -> Response:
    """Server-sent events: the run counts every two seconds."""

    async def events() -> AsyncIterator[str]:
        while not await request.is_disconnected():
            yield f"data: {json.dumps(await live_counts(counts))}\n\n"
            await asyncio.sleep(LIVE_INTERVAL_SECONDS)

    return StreamingResponse(events(), media_type="text/event-stream", headers=_NO_CACHE)


@router.get("/counts.json")
async def get_counts(session: CurrentSession, counts: Counts) -> dict[str, int]:
    """The run counts once: the polling fallback of the live counts."""
    return await live_counts(counts)


_NO_CACHE = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
