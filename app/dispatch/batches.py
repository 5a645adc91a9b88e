"""Batch handlers: the attempts of a batch worker's runs, handled together.

Each event is still a run of its own (stored, retried, dead-lettered, shown one by one); only
the handler call is shared. An attempt that finds no call of its worker under way starts one at
once; attempts that arrive meanwhile wait for the next, which takes all of them (up to the
worker's batch size). The call's outcome is every attempt's: a result per item, or the
exception for all, which each run then records as its own (a retry, the dead set).

The call has the worker's timeout, so that a call that hangs does not hold back the batches
behind it; an attempt that is cancelled or times out stops waiting, but does not cancel a
call the other attempts of its batch wait on (the handler must be idempotent per item, as every
handler must be for a run whose lease runs out).
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from app.core.errors import AevatarError
from app.workers.context import BatchContext, JobContext

if TYPE_CHECKING:
    from app.workers.registry import Job


class BatchTimedOut(AevatarError):
    """The batch call ran longer than its worker's timeout: every run of the batch failed."""


@dataclass
class _Waiting:
    item: BaseModel
    context: JobContext
    outcome: "asyncio.Future[Any]" = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class _Collector:
    """One batch worker's attempts, sent to its handler in batches, one call at a time."""

    def __init__(self, job: "Job") -> None:
        assert job.batch_size is not None
        self._worker = job
        self._size = job.batch_size
        self._waiting: list[_Waiting] = []
        self._caller: asyncio.Task[None] | None = None

    async def handle(self, item: BaseModel, context: JobContext) -> Any:
        waiting = _Waiting(item, context)
        self._waiting.append(waiting)
        if self._caller is None:
            self._caller = asyncio.create_task(self._call_all())
        return await asyncio.shield(waiting.outcome)

    async def _call_all(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._size]
                del self._waiting[: self._size]
                await self._call(batch)
        finally:
            self._caller = None

    async def _call(self, batch: list[_Waiting]) -> None:
        first = batch[0].context
        context = BatchContext(
            contexts=[waiting.context for waiting in batch],
            db=first.db,
            settings=first.settings,
            instance=first.instance,
            log=first.log.bind(batch=len(batch)),
        )
        timeout = self._worker.timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                results = await self._worker.handler([w.item for w in batch], context)
        except TimeoutError:
            _fail_all(batch, BatchTimedOut(f"the batch call ran longer than {timeout:g} s"))
            return
        except Exception as exc:
            _fail_all(batch, exc)
            return
        if results is not None and (
            not isinstance(results, Sequence) or len(results) != len(batch)
        ):
            _fail_all(batch, TypeError("a batch handler returns None or one result per item"))
            return
        for index, waiting in enumerate(batch):
            if not waiting.outcome.done():
                waiting.outcome.set_result(None if results is None else results[index])


def _fail_all(batch: list[_Waiting], exc: BaseException) -> None:
    for waiting in batch:
        if not waiting.outcome.done():
            waiting.outcome.set_exception(exc)


class BatchCalls:
    """The collectors of this instance's batch workers."""

    def __init__(self) -> None:
        self._collectors: dict[str, _Collector] = {}

    async def handle(self, job: "Job", item: BaseModel, context: JobContext) -> Any:
        collector = self._collectors.get(job.name)
        if collector is None:
            collector = self._collectors[job.name] = _Collector(job)
        return await collector.handle(item, context)
