"""FlowGate: a job's limits across all instances (app/workers/flow_control.py). An actor takes
one call at a time wherever it is hosted, so its count of running runs and of recent starts is
the one every instance asks. A place is held for a lease's length and renewed while its run
runs: the place of an instance that died frees itself.

One call carries what one instance asks of the gate at once (runs that leave, renew, enter):
the gate is one actor, so its calls are its throughput, and state is written once per call."""

import time
from dataclasses import dataclass
from typing import Any

from dapr.actor import Actor

from app.actors.interfaces import FlowGateInterface

_HOLDERS = "holders"  # run id -> when its place expires (epoch seconds)
_STARTS = "starts"  # the epoch seconds of the starts within the rate's period, oldest first


@dataclass
class _Gate:
    """The gate's state during one call."""

    name: str
    now: float
    ttl: float
    max_running: int | None
    rate_count: int | None
    period: float
    holders: dict[str, float]
    starts: list[float]

    def enter(self, run_id: str) -> dict[str, Any]:
        if run_id in self.holders:  # entered before, not left: its place is renewed
            self.holders[run_id] = self.now + self.ttl
            return {"granted": True, "reason": "", "retry_after_seconds": 0.0}
        if self.max_running is not None and len(self.holders) >= self.max_running:
            running = len(self.holders)
            return _refused(
                f"max_running={self.max_running}: {running} runs of {self.name!r} are running", 1.0
            )
        if self.rate_count is not None:
            self.starts = [at for at in self.starts if at > self.now - self.period]
            if len(self.starts) >= self.rate_count:
                return _refused(
                    f"rate_limit={self.rate_count}/{self.period:g}s: {len(self.starts)} runs of "
                    f"{self.name!r} started in the last {self.period:g} s",
                    self.starts[0] + self.period - self.now,
                )
            self.starts.append(self.now)
        if self.max_running is not None:
            self.holders[run_id] = self.now + self.ttl
        return {"granted": True, "reason": "", "retry_after_seconds": 0.0}


class FlowGate(Actor, FlowGateInterface):
    async def pass_(self, request: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        _, holders = await self._state_manager.try_get_state(_HOLDERS)
        _, starts = await self._state_manager.try_get_state(_STARTS)
        rate_count = request.get("rate_count")
        max_running = request.get("max_running")
        gate = _Gate(
            name=self.id.id,
            now=now,
            ttl=float(request["ttl_seconds"]),
            max_running=int(max_running) if max_running is not None else None,
            rate_count=int(rate_count) if rate_count is not None else None,
            period=float(request.get("rate_period_seconds", 0)),
            holders={run: until for run, until in dict(holders or {}).items() if until > now},
            starts=list(starts or ()),
        )
        for run_id in request.get("leave", ()):
            gate.holders.pop(str(run_id), None)
        for run_id in request.get("renew", ()):
            # A running run keeps (or, lapsed, takes back) its place: it runs either way.
            gate.holders[str(run_id)] = now + gate.ttl
        entered = {str(run_id): gate.enter(str(run_id)) for run_id in request.get("enter", ())}
        await self._state_manager.set_state(_HOLDERS, gate.holders)
        if gate.rate_count is not None:
            await self._state_manager.set_state(_STARTS, gate.starts)
        return {"entered": entered, "running": len(gate.holders)}


def _refused(reason: str, retry_after: float) -> dict[str, Any]:
    return {"granted": False, "reason": reason, "retry_after_seconds": max(retry_after, 0.0)}
