"""FlowGate: a job's limits across all instances (app/workers/flow_control.py). An actor takes
one call at a time wherever it is hosted, so its count of running runs and of recent starts is
the one every instance asks. A place is held for a lease's length and renewed while its run
runs: the place of an instance that died frees itself."""

import time
from typing import Any

from dapr.actor import Actor

from app.actors.interfaces import FlowGateInterface

_HOLDERS = "holders"  # run id -> when its place expires (epoch seconds)
_STARTS = "starts"  # the epoch seconds of the starts within the rate's period, oldest first


class FlowGate(Actor, FlowGateInterface):
    async def enter(self, request: dict[str, Any]) -> dict[str, Any]:
        run_id = str(request["run_id"])
        max_running = request.get("max_running")
        rate_count, period = request.get("rate_count"), float(request.get("rate_period_seconds", 0))
        now = time.time()
        holders = await self._holders(now)
        if run_id in holders or request.get("renew"):
            # A running run keeps (or, lapsed, takes back) its place: it runs either way.
            holders[run_id] = now + float(request["ttl_seconds"])
            await self._state_manager.set_state(_HOLDERS, holders)
            return _answer(True, holders)
        if max_running is not None and len(holders) >= int(max_running):
            return _answer(
                False,
                holders,
                f"max_running={max_running}: {len(holders)} runs of {self.id.id!r} are running",
                retry_after=1.0,
            )
        starts: list[float] = []
        if rate_count is not None:
            _, stored = await self._state_manager.try_get_state(_STARTS)
            starts = [at for at in stored or () if at > now - period]
            if len(starts) >= int(rate_count):
                return _answer(
                    False,
                    holders,
                    f"rate_limit={rate_count}/{period:g}s: {len(starts)} runs of {self.id.id!r} "
                    f"started in the last {period:g} s",
                    retry_after=starts[0] + period - now,
                )
            await self._state_manager.set_state(_STARTS, [*starts, now])
        if max_running is not None:
            holders[run_id] = now + float(request["ttl_seconds"])
            await self._state_manager.set_state(_HOLDERS, holders)
        return _answer(True, holders)

    async def leave(self, request: dict[str, Any]) -> dict[str, Any]:
        holders = await self._holders(time.time())
        if holders.pop(str(request["run_id"]), None) is not None:
            await self._state_manager.set_state(_HOLDERS, holders)
        return {"running": len(holders)}

    async def _holders(self, now: float) -> dict[str, float]:
        _, stored = await self._state_manager.try_get_state(_HOLDERS)
        return {run: until for run, until in dict(stored or {}).items() if until > now}


def _answer(
    granted: bool, holders: dict[str, float], reason: str = "", retry_after: float = 0.0
) -> dict[str, Any]:
    return {
        "granted": granted,
        "reason": reason,
        "retry_after_seconds": max(retry_after, 0.0),
        "running": len(holders),
    }
