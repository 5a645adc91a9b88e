"""Flow gates: a run of a job with limits across instances (`max_running`, `concurrency_key`,
`rate_limit`, an overlap policy) asks its FlowGate actor before it starts, renews its place
while it runs, and leaves it when its attempt ends. A run the gate holds back waits `pending`,
with the gate's reason, in its place in the queue. This instance remembers a full gate until
it may open, so that the poller does not claim that gate's runs in vain meanwhile.

What this instance's runs ask of one gate at once goes as one actor call (as group commit does
for the database, app/db/grouped.py): a gate is one actor, one call at a time, so the calls
it takes are its throughput."""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from loguru import logger

from app.actors.client import ActorUnavailable, GateAnswer
from app.db.grouped import Grouped
from app.dispatch.engine import EngineParts
from app.models.runs import JobRun
from app.workers.registry import Job

# A gate that could not be asked is tried again after this long.
_UNAVAILABLE_RETRY_SECONDS = 2.0
# However soon a full gate may open, the poller leaves it alone at least this long.
_SHORTEST_CLOSE_SECONDS = 0.2
# An actor call (5 s at most) and its turn behind the gate's other calls.
_CALL_DEADLINE_SECONDS = 10.0

Verb = Literal["enter", "renew", "leave"]
Ask = tuple[Verb, str]  # what a run asks of its gate, and the run's id


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
    _calls: dict[str, Grouped[Ask, GateAnswer | None]] = field(default_factory=dict)
    """Per gate, the asks of this instance's runs, sent together."""

    def closed(self) -> list[str]:
        now = time.monotonic()
        for gate in [gate for gate, until in self._closed.items() if until <= now]:
            del self._closed[gate]
        return list(self._closed)

    async def enter(self, job: Job, run: JobRun) -> Passage:
        gate = _gate(job, run)
        try:
            answer = await self._ask(job, gate, ("enter", run.id))
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
            assert answer is not None, "an entering run gets an answer"
            passage = Passage(answer.granted, answer.reason, answer.retry_after_seconds)
        if not passage.granted:
            wait = max(passage.retry_after_seconds, _SHORTEST_CLOSE_SECONDS)
            self._closed[gate] = time.monotonic() + wait
        return passage

    async def renew(self, job: Job, run: JobRun) -> None:
        """Keeps the run's place while it runs (a place not renewed frees itself)."""
        if job.limits.max_running is None:
            return
        try:
            await self._ask(job, _gate(job, run), ("renew", run.id))
        except ActorUnavailable as exc:
            logger.bind(run_id=run.id, error=str(exc)).warning("flow gate place not renewed")

    async def leave(self, job: Job, run: JobRun) -> None:
        """The attempt ended: its place is free, here at once (the poller may claim the gate's
        next run) and at the actor."""
        gate = _gate(job, run)
        self._closed.pop(gate, None)
        if job.limits.max_running is None:
            return
        try:
            await self._ask(job, gate, ("leave", run.id))
        except ActorUnavailable as exc:  # the place frees itself when its lease runs out
            logger.bind(run_id=run.id, gate=gate, error=str(exc)).info("flow gate not left")

    async def _ask(self, job: Job, gate: str, ask: Ask) -> GateAnswer | None:
        calls = self._calls.get(gate)
        if calls is None:

            async def send(asks: Sequence[Ask]) -> list[GateAnswer | None]:
                return await self._send(job, gate, asks)

            calls = self._calls[gate] = Grouped(send, timeout_seconds=_CALL_DEADLINE_SECONDS)
        try:
            return await calls.submit(ask)
        finally:
            if calls.idle and self._calls.get(gate) is calls:
                del self._calls[gate]  # per key value: gates come and go

    async def _send(self, job: Job, gate: str, asks: Sequence[Ask]) -> list[GateAnswer | None]:
        listed: dict[Verb, list[str]] = {"enter": [], "renew": [], "leave": []}
        for verb, run_id in asks:
            listed[verb].append(run_id)
        entered = await self.parts.actors.pass_gate(
            gate=gate,
            limits=job.limits,
            ttl_seconds=self.parts.settings.lease_seconds,
            **listed,
        )
        return [entered.get(run_id) if verb == "enter" else None for verb, run_id in asks]


def _gate(job: Job, run: JobRun) -> str:
    return run.gate or job.gate_of(run.payload)
