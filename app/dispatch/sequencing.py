"""Key sequences: the runs of one `ordered_by` key run one at a time, in order, on any instance.

Each key's KeySequencer actor holds its queue; a run is handed to it, and it calls back the
instance hosting it (`run_here`) within its turn.
"""

import asyncio
from collections.abc import Callable

from loguru import logger

from app.actors.client import ActorUnavailable
from app.core.clock import utc_now
from app.dispatch.engine import EngineParts
from app.dispatch.executor import RunExecutor
from app.dispatch.lifecycle import claim_next
from app.models.runs import JobRun, Refusal

# How long an event's delivery may wait for its key's earlier runs (the actor's queue).
SEQUENCE_TIMEOUT_SECONDS = 55.0


class KeySequences:
    def __init__(
        self,
        *,
        parts: EngineParts,
        executor: RunExecutor,
    ) -> None:
        self._parts = parts
        self._executor = executor
        self._handed: set[str] = set()  # runs handed to their key's actor, not back yet

    async def run_in_sequence(self, run: JobRun, *, first_hand: bool = False) -> None:
        """Hands the run to its key's actor, which executes it on the instance hosting it, after
        the key's earlier runs. When the actor does not answer (its turn did not come in time,
        or the sidecar is away), the run stays queued behind its key and is handed to the actor
        again after a lease's length: it never runs out of its key's order."""
        assert run.sequence_key is not None
        try:
            await self._parts.actors.run_in_sequence(
                job=run.job,
                key=run.sequence_key,
                run_id=run.id,
                wait_seconds=SEQUENCE_TIMEOUT_SECONDS,
            )
        except ActorUnavailable as exc:
            held = await self._parts.runs.hold(
                run_id=run.id, until=self._parts.settings.lease_until(utc_now())
            )
            logger.bind(job=run.job, run_id=run.id, error=str(exc), held=held).warning(
                "key sequencer did not answer: the run waits behind its key"
            )
            if first_hand and held:
                await self._parts.runs.note_refusal(
                    job=run.job,
                    dedupe_key=f"event:{run.trigger.event_id}",
                    refusal=Refusal(
                        instance=self._parts.instance,
                        at=utc_now(),
                        reason="not run out of its key's order: the key actor did not answer "
                        f"({exc}); queued behind its key and handed to the actor again",
                    ),
                )

    async def run_here(self, run_id: str) -> str:
        """Claims one due run for this instance and executes it to the end of the attempt;
        returns its status then. The KeySequencer actor calls this within its turn."""
        run = await claim_next(self._parts, run_id=run_id)
        if run is not None:
            await asyncio.shield(self._executor.start(run))
        current = await self._parts.runs.get(run_id)
        return current.status.value if current else "unknown"

    async def resume(self, *, limit: int, jobs: list[str]) -> int:
        """Hands the due runs of key sequences (retries, orphans) of `jobs` to their actors."""
        due = await self._parts.runs.due_in_sequence(now=utc_now(), jobs=jobs, limit=limit)
        handed = 0
        for run in due:
            if run.id in self._handed:
                continue
            self._handed.add(run.id)
            task = asyncio.create_task(self.run_in_sequence(run), name=f"sequence-{run.id}")
            task.add_done_callback(self._back(run.id))
            handed += 1
        return handed

    def _back(self, run_id: str) -> "Callable[[asyncio.Task[None]], None]":
        def done(_: "asyncio.Task[None]") -> None:
            self._handed.discard(run_id)

        return done
