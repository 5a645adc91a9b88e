"""TickCoordinator: exactly one claim per (job, tick) across all instances."""

from typing import Any

from dapr.actor import Actor

from app.actors.interfaces import TickCoordinatorInterface

_GRANTED = "granted"
# Ticks remembered per job: far more than can be in flight at once, few enough to load quickly.
_REMEMBERED_TICKS = 512


class TickCoordinator(Actor, TickCoordinatorInterface):
    async def claim(self, request: dict[str, Any]) -> dict[str, Any]:
        tick, instance = str(request["tick"]), str(request["instance"])
        _, stored = await self._state_manager.try_get_state(_GRANTED)
        granted: dict[str, str] = dict(stored or {})
        holder = granted.get(tick)
        if holder is None:
            granted[tick] = holder = instance
            if len(granted) > _REMEMBERED_TICKS:
                for old in sorted(granted)[: len(granted) - _REMEMBERED_TICKS]:
                    del granted[old]
            await self._state_manager.set_state(_GRANTED, granted)
        return {"granted": holder == instance, "holder": holder}
