"""TickCoordinator: exactly one claim per (job, tick) across all instances, and the ticks no
instance could store (the database away), kept in the actor state store until they are."""

from typing import Any

from dapr.actor import Actor
from loguru import logger

from app.actors.interfaces import TickCoordinatorInterface
from app.actors.state_values import as_text

_GRANTED = "granted"
_MISSED = "missed"
# Ticks remembered per job: far more than can be in flight at once, few enough to load quickly.
_REMEMBERED_TICKS = 512
# Missed ticks kept per job: a day of a one-minute cron; beyond it the oldest are let go.
KEPT_TICKS = 1_440


class TickCoordinator(Actor, TickCoordinatorInterface):
    async def claim(self, request: dict[str, Any]) -> dict[str, Any]:
        tick, instance = as_text(request["tick"]), str(request["instance"])
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

    async def keep(self, request: dict[str, Any]) -> dict[str, Any]:
        missed = await self._missed()
        missed.add(as_text(request["tick"]))
        if len(missed) > KEPT_TICKS:
            dropped = sorted(missed)[: len(missed) - KEPT_TICKS]
            missed.difference_update(dropped)
            logger.bind(job=self.id.id, dropped=len(dropped), oldest=dropped[0]).error(
                "too many missed ticks kept: the oldest are let go"
            )
        await self._state_manager.set_state(_MISSED, sorted(missed))
        return {"kept": len(missed)}

    async def missed(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"ticks": sorted(await self._missed())}

    async def forget(self, request: dict[str, Any]) -> dict[str, Any]:
        missed = await self._missed()
        missed.difference_update(as_text(tick) for tick in request["ticks"])
        await self._state_manager.set_state(_MISSED, sorted(missed))
        return {"left": len(missed)}

    async def _missed(self) -> set[str]:
        _, stored = await self._state_manager.try_get_state(_MISSED)
        return kept_entries(stored)


def kept_entries(stored: Any) -> set[str]:
    """The kept entries as read back from the store, each as text (app/actors/state_values.py)."""
    return {as_text(entry) for entry in stored or ()}
