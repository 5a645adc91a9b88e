"""KeySequencer: the runs of one key (one customer, one order) execute one at a time across all
instances, because an actor takes one call at a time wherever it is hosted."""

from collections.abc import Awaitable, Callable
from typing import Any

from dapr.actor import Actor, ActorId
from dapr.actor.runtime.context import ActorRuntimeContext

from app.actors.interfaces import KeySequencerInterface

RunHere = Callable[[str], Awaitable[str]]


class KeySequencer(Actor, KeySequencerInterface):
    def __init__(self, ctx: ActorRuntimeContext, actor_id: ActorId, *, run_here: RunHere) -> None:
        super().__init__(ctx, actor_id)
        self._run_here = run_here

    async def run(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"status": await self._run_here(str(request["run_id"]))}
