"""The heartbeat: every few seconds, each instance says it is alive (name, start, in-flight
runs, RSS, version) and writes the run statistics it gathered. A database outage skips
beats; the statistics wait in memory for the next one."""

import asyncio
import contextlib
import os
from datetime import datetime, timedelta

from loguru import logger

from app.core.clock import utc_now
from app.core.version import VERSION
from app.db.mongo import Database
from app.dispatch.engine import EngineParts
from app.dispatch.executor import RunExecutor
from app.observability.metrics import RunMetrics
from app.repositories.instances import InstanceBeat, InstanceRepository
from app.repositories.run_stats import RunStatsRepository

# An instance unheard of for this many beats is not live; after a day it is forgotten.
LIVE_BEATS = 3
FORGET_AFTER = timedelta(days=1)


def rss_bytes() -> int:
    """The process's resident set, from /proc (0 where there is none)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Heartbeat:
    def __init__(
        self,
        *,
        parts: EngineParts,
        executor: RunExecutor,
        metrics: RunMetrics,
        db: Database,
    ) -> None:
        self._instance = parts.instance
        self._interval = parts.settings.heartbeat_seconds
        self._jobs = len(parts.registry)
        self._executor = executor
        self._metrics = metrics
        self._instances = InstanceRepository(db)
        self._stats = RunStatsRepository(db)
        self._started_at = utc_now()
        self._stop = asyncio.Event()

    def live_since(self, now: datetime) -> datetime:
        return now - timedelta(seconds=self._interval * LIVE_BEATS)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        self._metrics.in_flight.read_with(lambda: self._executor.in_flight)
        try:
            await self._stats.ensure_indexes()
        except Exception as exc:
            logger.bind(error=repr(exc)).warning("run_stats indexes not created yet")
        while not self._stop.is_set():
            await self.beat()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)
        await self.flush()
        with contextlib.suppress(Exception):
            await self._instances.gone(self._instance)

    async def beat(self) -> None:
        now = utc_now()
        try:
            await self._instances.beat(
                InstanceBeat(
                    name=self._instance,
                    started_at=self._started_at,
                    seen_at=now,
                    in_flight=self._executor.in_flight,
                    rss_bytes=rss_bytes(),
                    version=VERSION,
                    jobs=self._jobs,
                )
            )
            await self._instances.forget_silent(now=now, after=FORGET_AFTER)
        except Exception as exc:
            logger.bind(error=repr(exc)).warning("heartbeat not written; trying again next beat")
        await self.flush()

    async def flush(self) -> None:
        tallies = self._metrics.stats.take()
        if not tallies:
            return
        try:
            await self._stats.add(tallies)
        except Exception as exc:
            self._metrics.stats.give_back(tallies)
            logger.bind(error=repr(exc)).warning("run statistics not written; kept for next beat")
