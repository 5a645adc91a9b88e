"""Group commit: concurrent single requests to one collection sent as one request.

One batch is in flight at a time. The first request goes out at once, alone; the requests that
arrive while it is in flight go together in the next one, so batches grow with the load and an
idle server sees no added latency. Each caller gets its own answer or its own error.

The sender never dies silently: every batch runs under a deadline (`pymongo.timeout`), so a
frozen or restarted server fails the callers of that batch instead of holding every later one
behind it, and whatever a batch raises is handed to its callers, not to the loop.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import pymongo
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, WriteError

from app.db.mongo import Document

Item = TypeVar("Item")
Answer = TypeVar("Answer")

_DUPLICATE_KEY = 11000


class Grouped(Generic[Item, Answer]):
    """`submit(item)` from many tasks; `send(items)` answers each, in order (an exception in
    place of an answer fails that caller alone)."""

    def __init__(
        self,
        send: Callable[[Sequence[Item]], Awaitable[Sequence[Answer | BaseException]]],
        *,
        max_batch: int = 256,
        timeout_seconds: float = 10.0,
    ) -> None:
        self._send = send
        self._max_batch = max_batch
        self._timeout = timeout_seconds
        self._waiting: list[tuple[Item, asyncio.Future[Answer]]] = []
        self._sender: asyncio.Task[None] | None = None

    @property
    def idle(self) -> bool:
        """Nothing waits and no batch is in flight."""
        return not self._waiting and (self._sender is None or self._sender.done())

    async def submit(self, item: Item) -> Answer:
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._drain(), name="group-commit")
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            await self._send_batch(batch)

    async def _send_batch(self, batch: list[tuple[Item, "asyncio.Future[Answer]"]]) -> None:
        try:
            with pymongo.timeout(self._timeout):
                answers = await self._send([item for item, _ in batch])
        except BaseException as exc:  # handed to every caller of the batch
            for _, future in batch:
                if not future.done():
                    future.set_exception(_fresh(exc))
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for (_, future), answer in zip(batch, answers, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(answer, BaseException):
                future.set_exception(answer)
            else:
                future.set_result(answer)


def _fresh(exc: BaseException) -> BaseException:
    """Cancelling the sender must not read as the caller's own cancellation."""
    if isinstance(exc, asyncio.CancelledError):
        return ConnectionAbortedError("the group commit was stopped (shutdown)")
    return exc


class GroupedInserts:
    """Inserts sent as `insert_many(ordered=False)`: one duplicate does not stop the others,
    and each caller gets the error `insert_one` would have raised for its document."""

    def __init__(self, collection: AsyncCollection[Document], *, timeout_seconds: float) -> None:
        self._collection = collection
        self._grouped = Grouped[Document, bool](self._insert_many, timeout_seconds=timeout_seconds)

    async def insert(self, document: Document) -> bool:
        """True once stored, False when a unique index already holds its key."""
        try:
            return await self._grouped.submit(document)
        except DuplicateKeyError:
            return False

    async def insert_or_raise(self, document: Document) -> None:
        """As `insert_one`: `DuplicateKeyError` or `WriteError` for this document alone."""
        await self._grouped.submit(document)

    async def _insert_many(self, documents: Sequence[Document]) -> list[bool | BaseException]:
        try:
            await self._collection.insert_many(list(documents), ordered=False)
        except BulkWriteError as exc:
            answers: list[bool | BaseException] = [True] * len(documents)
            for error in exc.details.get("writeErrors", []):
                code, message = error.get("code"), error.get("errmsg", "write error")
                failure = DuplicateKeyError if code == _DUPLICATE_KEY else WriteError
                answers[int(error["index"])] = failure(message, code, error)
            return answers
        return [True] * len(documents)


class GroupedLookups:
    """`exists(value)`: whether a document has `value` in `field`; one `$in` query per batch."""

    def __init__(
        self, collection: AsyncCollection[Document], field: str, *, timeout_seconds: float
    ) -> None:
        self._collection = collection
        self._field = field
        self._grouped = Grouped[str, bool](self._find, timeout_seconds=timeout_seconds)

    async def exists(self, value: str) -> bool:
        return await self._grouped.submit(value)

    async def _find(self, values: Sequence[str]) -> list[bool | BaseException]:
        wanted = sorted(set(values))
        query = {self._field: wanted[0] if len(wanted) == 1 else {"$in": wanted}}
        cursor = self._collection.find(query, projection={self._field: True, "_id": False})
        found = {document.get(self._field) async for document in cursor}
        return [value in found for value in values]
