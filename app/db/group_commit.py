"""Group commit: concurrent single writes to one collection, sent as one bulk request.

A write that finds no request of its kind on its way goes at once; writes made while one is on
its way wait for the next, which takes all of them (up to `max_batch`). The database server pays
its per-request cost once per batch instead of once per write, and no write waits for a timer.

Each writer gets its own outcome, as from its single write: a duplicate key or a refused
document fails that writer only; a failure of the whole request (the database is away) fails
every writer in it. A batch that gets no answer within `timeout_seconds` fails too: the writes
behind it must not wait on it for ever (a frozen server keeps a connection open and silent).
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pymongo
from bson import ObjectId
from pymongo import InsertOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, WriteError

Document = dict[str, Any]
Outcome = TypeVar("Outcome")
Write = TypeVar("Write")

# Where an update leaves its token, so that the writers of a batch in which not every filter
# matched can tell whose did.
WRITE_TOKEN = "_write"
_DUPLICATE_KEY = 11000


@dataclass(frozen=True)
class _Update:
    query: Document
    update: Document
    token: ObjectId

    def operation(self) -> UpdateOne:
        return UpdateOne(self.query, self.update)


@dataclass
class _Queued(Generic[Write, Outcome]):
    write: Write
    outcome: "asyncio.Future[Outcome]" = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class _Batcher(Generic[Write, Outcome]):
    """Sends queued writes in batches, one batch on its way at a time."""

    def __init__(
        self,
        send: Callable[[list[_Queued[Write, Outcome]]], Awaitable[None]],
        *,
        max_batch: int,
        timeout_seconds: float,
    ) -> None:
        self._send = send
        self._max_batch = max_batch
        self._timeout_seconds = timeout_seconds
        self._queue: list[_Queued[Write, Outcome]] = []
        self._sender: asyncio.Task[None] | None = None

    async def submit(self, write: Write) -> Outcome:
        queued: _Queued[Write, Outcome] = _Queued(write)
        self._queue.append(queued)
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_all())
        # Shielded: a writer that is cancelled must not cancel the batch the others wait on.
        return await asyncio.shield(queued.outcome)

    async def _send_all(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                try:
                    with pymongo.timeout(self._timeout_seconds):
                        await self._send(batch)
                except Exception as exc:  # the whole request failed: so did every write in it
                    for queued in batch:
                        _fail(queued.outcome, exc)
                for queued in batch:  # a writer the sender did not answer must not wait forever
                    _fail(queued.outcome, RuntimeError("the batch ended without an outcome"))
        finally:
            self._sender = None


class GroupCommit:
    """`insert_one` and `update_one` on one collection, group-committed."""

    def __init__(
        self,
        collection: AsyncCollection[Document],
        *,
        max_batch: int = 500,
        timeout_seconds: float = 10.0,
    ) -> None:
        self._collection = collection
        self._inserts: _Batcher[Document, None] = _Batcher(
            self._insert_batch, max_batch=max_batch, timeout_seconds=timeout_seconds
        )
        self._updates: _Batcher[_Update, bool] = _Batcher(
            self._update_batch, max_batch=max_batch, timeout_seconds=timeout_seconds
        )

    async def insert_one(self, document: Document) -> None:
        """Inserts `document` (which must carry its `_id`); raises DuplicateKeyError as
        `insert_one` does."""
        if "_id" not in document:
            document["_id"] = ObjectId()
        await self._inserts.submit(document)

    async def update_one(self, query: Document, update: Document) -> bool:
        """Applies `update` to the document `query` matches (by `_id`, and any further
        conditions); returns whether one matched."""
        if "_id" not in query:
            raise ValueError("a group-committed update names its document by `_id`")
        token = ObjectId()
        marked = {**update, "$set": {**update.get("$set", {}), WRITE_TOKEN: token}}
        return await self._updates.submit(_Update(query, marked, token))

    async def _insert_batch(self, batch: list[_Queued[Document, None]]) -> None:
        failed: dict[int, Exception] = {}
        try:
            await self._collection.bulk_write(
                [InsertOne(queued.write) for queued in batch], ordered=False
            )
        except BulkWriteError as exc:
            failed = _write_errors(exc)
        for index, queued in enumerate(batch):
            if index in failed:
                _fail(queued.outcome, failed[index])
            elif not queued.outcome.done():
                queued.outcome.set_result(None)

    async def _update_batch(self, batch: list[_Queued[_Update, bool]]) -> None:
        failed: dict[int, Exception] = {}
        matched = 0
        try:
            result = await self._collection.bulk_write(
                [queued.write.operation() for queued in batch], ordered=False
            )
            matched = result.matched_count
        except BulkWriteError as exc:
            failed = _write_errors(exc)
            matched = -1
        if matched == len(batch):
            applied = set(range(len(batch)))
        else:  # not every filter matched (a run another instance took over): ask whose did
            applied = await self._applied(batch)
        for index, queued in enumerate(batch):
            if index in failed:
                _fail(queued.outcome, failed[index])
            elif not queued.outcome.done():
                queued.outcome.set_result(index in applied)

    async def _applied(self, batch: list[_Queued[_Update, bool]]) -> set[int]:
        tokens = {queued.write.token: index for index, queued in enumerate(batch)}
        found = self._collection.find(
            {
                "_id": {"$in": [queued.write.query["_id"] for queued in batch]},
                WRITE_TOKEN: {"$in": list(tokens)},
            },
            {WRITE_TOKEN: True},
        )
        return {tokens[document[WRITE_TOKEN]] async for document in found}


def _write_errors(exc: BulkWriteError) -> dict[int, Exception]:
    """Each refused write's own error, by its index in the batch. A write concern error is the
    whole batch's."""
    if exc.details.get("writeConcernErrors"):
        raise exc
    errors: dict[int, Exception] = {}
    for error in exc.details.get("writeErrors", []):
        kind = DuplicateKeyError if error.get("code") == _DUPLICATE_KEY else WriteError
        errors[error["index"]] = kind(error.get("errmsg", ""), error.get("code"), error)
    return errors


def _fail(outcome: "asyncio.Future[Any]", exc: BaseException) -> None:
    if not outcome.done():
        outcome.set_exception(exc)
