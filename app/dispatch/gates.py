"""Flow gates: a run of a job with limits across instances (`max_running`, `concurrency_key`,
`rate_limit`, an overlap policy) asks its FlowGate actor before it starts, renews its place
while it runs, and leaves it when its attempt ends. A run the gate holds back waits `pending`,
with the gate's reason, in its place in the queue. This instance remembers a full gate until
it may open, so that the poller does not claim that gate's runs in vain meanwhile."""

import time
from dataclasses import dataclass, field

from loguru import logger

from app.actors.client import ActorUnavailable
from app.dispatch.engine import EngineParts
from app.models.runs import JobRun
from app.workers.registry import Job

# A gate that could not be asked is tried again after this long.
_UNAVAILABLE_RETRY_SECONDS = 2.0
# However soon a full gate may open, the poller leaves it alone at least this long.
_SHORTEST_CLOSE_SECONDS = 0.2


@dataclass(frozen=True)
class Passage:
    granted: bool
    reason: str = ""
    retry_after_seconds: float = 0.0


@dataclass
class RunGates:
    parts: EngineParts
    _closed: dict[str, float] = field(default_factory=dict)
    """Gates found full here: gate -> until when (monotonic) the poller leaves their runs."""

    def closed(self) -> list[str]:
        now = time.monotonic()
        for gate in [gate for gate, until in self._closed.items() if until <= now]:
            del self._closed[gate]
        return list(self._closed)

    async def enter(self, job: Job, run: JobRun) -> Passage:
        gate = run.gate or job.gate_of(run.payload)
        try:
            answer = await self.parts.actors.enter_gate(
                gate=gate,
                run_id=run.id,
                limits=job.limits,
                ttl_seconds=self.parts.settings.lease_seconds,
                renew=False,
            )
        except ActorUnavailable as exc:
            logger.bind(job=job.name, run_id=run.id, gate=gate, error=str(exc)).warning(
                "flow gate unavailable: the run waits"
            )
            passage = Passage(
                False,
                f"its flow gate {gate!r} could not be asked ({exc})",
                _UNAVAILABLE_RETRY_SECONDS,
            )
        else:
            passage = Passage(answer.granted, answer.reason, answer.retry_after_seconds)
        if not passage.granted:
            wait = max(passage.retry_after_seconds, _SHORTEST_CLOSE_SECONDS)
            self._closed[gate] = time.monotonic() + wait
        return passage

    async def renew(self, job: Job, run: JobRun) -> None:
        """Keeps the run's place while it runs (a place not renewed frees itself)."""
        if job.limits.max_running is None:
            return
        gate = run.gate or job.gate_of(run.payload)
        try:
            await self.parts.actors.enter_gate(
                gate=gate,
                run_id=run.id,
                limits=job.limits,
                ttl_seconds=self.parts.settings.lease_seconds,
                renew=True,
            )
        except ActorUnavailable as exc:
            logger.bind(run_id=run.id, gate=gate, error=str(exc)).warning(
                "flow gate place not renewed"
            )

    async def leave(self, job: Job, run: JobRun) -> None:
        """The attempt ended: its place is free, here at once (the poller may claim the gate's
        next run) and at the actor."""
        gate = run.gate or job.gate_of(run.payload)
        self._closed.pop(gate, None)
        if job.limits.max_running is None:
            return
        try:
            await self.parts.actors.leave_gate(gate=gate, run_id=run.id)
        except ActorUnavailable as exc:  # the place frees itself when its lease runs out
            logger.bind(run_id=run.id, gate=gate, error=str(exc)).info("flow gate not left")
