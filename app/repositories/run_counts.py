"""The counts of the run sets an operator watches (waiting, running, retrying, the dead set),
kept for a few seconds: every page view, live stream and scrape of one instance shares one
count, since a count costs the database a read of every run it counts."""

import asyncio
import time

from app.models.runs import RunStatus
from app.repositories.run_history import RunHistory

WATCHED = ("pending", "running", "failed", "dead")


class RunCounts:
    def __init__(self, history: RunHistory) -> None:
        self._history = history
        self._counts: dict[str, int] = {}
        self._counted_at = float("-inf")
        self._counting: asyncio.Task[dict[str, int]] | None = None

    async def get(self, *, max_age_seconds: float) -> dict[str, int]:
        """Counts no older than `max_age_seconds`; callers that come while a count runs wait
        for it rather than start their own."""
        if time.monotonic() - self._counted_at <= max_age_seconds:
            return dict(self._counts)
        if self._counting is None:
            self._counting = asyncio.create_task(self._count(), name="run-counts")
        try:
            return dict(await asyncio.shield(self._counting))
        finally:
            if self._counting is not None and self._counting.done():
                self._counting = None

    async def _count(self) -> dict[str, int]:
        counts = {
            "pending": await self._history.count(status=RunStatus.PENDING),
            "running": await self._history.count(status=RunStatus.RUNNING),
            "failed": await self._history.count(status=RunStatus.FAILED),
            "dead": await self._history.count(status=RunStatus.DEAD, dead_set=True),
        }
        self._counts, self._counted_at = counts, time.monotonic()
        return counts
