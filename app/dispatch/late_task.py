"""A task started only if it is still wanted after a delay: a timer until then, not a task.

Every run has a lease keeper whose first act is due a third of a lease after the claim; most
runs are over long before. A sleeping task per run, made and cancelled, costs more than the
rest of a short run's bookkeeping, so the keeper's task is made when it is due."""

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any


class LateTask:
    def __init__(
        self, delay: float, start: Callable[[], Coroutine[Any, Any, None]], *, name: str
    ) -> None:
        self._start = start
        self._name = name
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(delay, self._begin)

    def _begin(self) -> None:
        self._task = asyncio.create_task(self._start(), name=self._name)

    async def cancel(self) -> None:
        """Stops it, whether it has begun or not; returns once its task has unwound."""
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
