"""The jobs an operator paused, as this instance knows them: read again every few seconds (and
at once on this instance's own pause or resume), so that a delivery asks no database whether
its job is paused. Paused jobs' runs are not claimed; a paused handler's deliveries are stored
to wait (app/dispatch/intake.py)."""

import asyncio
import contextlib

from loguru import logger

from app.repositories.pauses import Pause, PauseRepository

# How stale another instance's pause or resume may be here.
REFRESH_SECONDS = 2.0


class PausedJobs:
    def __init__(self, pauses: PauseRepository) -> None:
        self._repository = pauses
        self._paused: dict[str, Pause] = {}
        self._stop = asyncio.Event()

    def of(self, job: str) -> Pause | None:
        return self._paused.get(job)

    def exclude(self, jobs: list[str]) -> list[str]:
        """`jobs` without the paused ones."""
        return [job for job in jobs if job not in self._paused] if self._paused else jobs

    async def refresh(self) -> None:
        self._paused = await self._repository.all()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.refresh()
            except Exception as exc:  # the database is away: the last known pauses hold
                logger.bind(error=repr(exc)).warning("paused jobs not read")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), REFRESH_SECONDS)

    def stop(self) -> None:
        self._stop.set()
