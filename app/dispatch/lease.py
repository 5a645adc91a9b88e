"""A run's lease while an instance works on it: renewed in MongoDB (every run) and, for data
processors, with the RunLease actor, the primary guard against two instances on one run. A run
not stored yet (a delivered event's first attempt) is stored at the first renewal instead."""

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from loguru import logger

from app.actors.client import ActorUnavailable
from app.core.clock import utc_now
from app.dispatch.engine import EngineParts
from app.dispatch.flight import Flight, StopReason
from app.dispatch.sent_again import note_if_sent_again
from app.models.runs import JobRun, Progress
from app.workers.errors import LeaseLost


@dataclass
class RunLeaseKeeper:
    run: JobRun
    parts: EngineParts
    flight: Flight
    renew_place: Callable[[], Coroutine[Any, Any, None]] | None = None
    """Renews the run's place at its flow gate with its lease (app/dispatch/gates.py)."""

    @property
    def _with_actor(self) -> bool:
        return self.run.kind == "data"

    async def acquire(self) -> str | None:
        """Takes the actor lease of a data processor run. Returns the holder's name when another
        live instance holds it (this one must not work on the run)."""
        if not self._with_actor:
            return None
        try:
            granted, holder, _ = await self.parts.actors.acquire_lease(
                run_id=self.run.id,
                instance=self.parts.instance,
                ttl_seconds=self.parts.settings.lease_seconds,
                wait_seconds=self._actor_wait,
            )
        except ActorUnavailable as exc:
            logger.bind(run_id=self.run.id, error=str(exc)).warning(
                "lease actor unavailable: the MongoDB lease alone guards this run"
            )
            return None
        return None if granted else holder

    async def release(self) -> None:
        if not self._with_actor:
            return
        try:
            await self.parts.actors.release_lease(
                run_id=self.run.id, instance=self.parts.instance, wait_seconds=self._actor_wait
            )
        except ActorUnavailable as exc:  # it expires on its own
            logger.bind(run_id=self.run.id, error=str(exc)).info("lease actor not released")

    async def save(self, progress: Progress, checkpoint: Any, *, save_checkpoint: bool) -> bool:
        """Renews the lease and saves progress; returns whether an operator asked to cancel."""
        cancel = await self._renew(progress, checkpoint, save_checkpoint=save_checkpoint)
        if cancel is None:
            self.flight.stop(StopReason.LEASE_LOST)
            raise LeaseLost(self.run.id)
        self.flight.progressed()
        return cancel

    @property
    def first_renewal_after(self) -> float:
        return self.parts.settings.lease_seconds / 3

    @property
    def _actor_wait(self) -> float:
        """How long a call to the lease actor may take: a renewal asks the actor first, then
        MongoDB, so an actor that does not answer (placement moving actors after an instance
        died) must not hold the MongoDB lease past its end."""
        return min(5.0, self.parts.settings.lease_seconds / 3)

    async def keep(self) -> None:
        """Renews the lease every third of its length, from a third of it after the claim (the
        wait for a slot included) until cancelled. Stops the flight when the lease is lost, or
        when an operator asked to cancel a run that is not a data processor (those stop at a
        chunk boundary). The run's place at its flow gate is renewed beside, one renewal at a
        time: a gate that is slow to answer must not hold back the lease's next renewal."""
        placing: asyncio.Task[None] | None = None
        try:
            while True:
                try:
                    cancel = await self._renew(None, None, save_checkpoint=False)
                except Exception as exc:  # the database is away: keep trying while it lasts
                    logger.bind(run_id=self.run.id, error=repr(exc)).warning("lease renewal failed")
                else:
                    if cancel is None:
                        self.flight.stop(StopReason.LEASE_LOST)
                        return
                    if cancel and self.run.kind != "data":
                        self.flight.stop(StopReason.CANCELLED)
                if self.renew_place is not None and (placing is None or placing.done()):
                    placing = asyncio.create_task(self.renew_place(), name=f"place-{self.run.id}")
                await asyncio.sleep(self.first_renewal_after)
        finally:
            if placing is not None:
                placing.cancel()

    async def _renew(
        self, progress: Progress | None, checkpoint: Any, *, save_checkpoint: bool
    ) -> bool | None:
        if self._with_actor and await self.acquire() is not None:
            return None  # the actor gave the lease to another instance
        storage = self.flight.storage
        if not storage.stored:
            async with storage.lock:
                if not storage.stored:
                    return await self._store_running()
        now = utc_now()
        return await self.parts.runs.renew_lease(
            run_id=self.run.id,
            instance=self.parts.instance,
            lease_until=self.parts.settings.lease_until(now),
            progress=progress,
            checkpoint=checkpoint,
            save_checkpoint=save_checkpoint,
        )

    async def _store_running(self) -> bool | None:
        """A run not stored yet has outlived a third of its lease: stored now, as running and
        leased, so that operators see it and can cancel it, and a redelivery finds it. None
        when the occurrence has a run already: another instance's, which this one leaves."""
        now = utc_now()
        storage = self.flight.storage
        running = self.run.model_copy(update={"started_at": self.run.started_at or now})
        inserted = await self.parts.runs.insert(
            running,
            dedupe_key=storage.dedupe_key,
            lease_until=self.parts.settings.lease_until(now),
        )
        storage.recorded = True
        storage.stored = inserted
        if not inserted and storage.dedupe_key is not None:
            await note_if_sent_again(self.parts, self.run, storage.dedupe_key)
        return False if inserted else None
