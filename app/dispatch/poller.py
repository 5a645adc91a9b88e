"""The poller: claims runs that wait for an attempt (queued, retries due, orphaned by a dead
instance) and starts them on this instance, as long as it has room. The runs of a paused job,
and of a flow gate found full here a moment ago, are left to wait."""

import asyncio
import contextlib

from loguru import logger

from app.dispatch.engine import EngineParts
from app.dispatch.executor import RunExecutor
from app.dispatch.lifecycle import claim_next
from app.dispatch.paused_jobs import PausedJobs
from app.dispatch.sequencing import KeySequences


class RunPoller:
    def __init__(
        self,
        *,
        parts: EngineParts,
        executor: RunExecutor,
        sequences: KeySequences,
        paused: PausedJobs,
    ) -> None:
        self._parts = parts
        self._paused = paused
        self._jobs = [job.name for job in parts.registry]
        self._executor = executor
        self._sequences = sequences
        self._engine = parts.settings
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Looks for due runs now rather than at the next interval."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self._claim_while_room()
            except Exception as exc:  # the database is away: try again at the next interval
                logger.bind(error=repr(exc)).warning("poller could not claim runs")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._engine.poll_interval_seconds)
            self._wake.clear()

    async def _claim_while_room(self) -> None:
        unpaused = self._paused.exclude(self._jobs)
        await self._sequences.resume(limit=self._engine.max_in_flight, jobs=unpaused)
        executor = self._executor
        while executor.has_capacity and not self._stop.is_set():
            run = await claim_next(
                self._parts,
                jobs=unpaused,
                closed_gates=executor.closed_gates(),
            )
            if run is None:
                return
            logger.bind(job=run.job, run_id=run.id, attempt=run.attempt).debug("claimed run")
            executor.start(run)
