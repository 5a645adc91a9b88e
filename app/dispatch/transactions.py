"""Exactly-once effects for a transactional job (`transactional=True`).

The attempt's handler runs inside one MongoDB transaction whose session is bound to it (pymongo's
`ClientSession.bind()`), so that its `ctx.db` writes need no `session=`. The transaction starts
by inserting the run's marker into `applied_runs`, keyed by the run id:

- an attempt taken over after its lease ran out (its instance frozen, its database away) and
  still in its transaction holds that key: the other attempt's insert conflicts with it, and
  its transaction is retried (pymongo's `with_transaction`) until the first one commits or the
  server aborts it (`transactionLifetimeLimitSeconds`);
- once an attempt has committed, a later one finds the marker and does not run the handler
  again: the effects stand, and the run succeeds with the result the marker kept.

The run's own document is written after the commit, as every run's is (a write in the
transaction would conflict with the lease renewals made beside it).
"""

from collections.abc import Awaitable, Callable
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError, OperationFailure
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from app.core.clock import utc_now
from app.core.errors import AevatarError, StartRefused
from app.db.mongo import Database
from app.dispatch.storable import result_to_store
from app.models.runs import JobRun

APPLIED_RUNS = "applied_runs"
# Markers outlive any retry of their run: a week, as long as a dead run is commonly kept.
MARKER_TTL_SECONDS = 7 * 24 * 3600
# The server refuses transactions: a standalone mongod (IllegalOperation).
_NO_TRANSACTIONS = 20


class TransactionsUnsupported(StartRefused):
    """A job asks for `transactional=True` and the MongoDB server cannot run transactions."""


class _AppliedAlready(AevatarError):
    """An earlier attempt of the run committed its effects."""


class RunTransactions:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._markers = db[APPLIED_RUNS]

    async def ensure_ready(self, jobs: list[str]) -> None:
        """Refuses start-up when the server cannot run a transaction (mongod needs a replica
        set); the markers' TTL index."""
        try:
            async with self._db.client.start_session() as session:
                await session.with_transaction(self._probe)
        except OperationFailure as exc:
            if exc.code != _NO_TRANSACTIONS:
                raise
            raise TransactionsUnsupported(
                f"jobs {', '.join(jobs)} are transactional=True, and the MongoDB server "
                f"cannot run transactions ({exc.details and exc.details.get('errmsg')}): "
                "a mongod needs a replica set (`mongod --replSet rs0`, then "
                "`rs.initiate()`); a one-member set will do"
            ) from exc
        await self._markers.create_index("at", expireAfterSeconds=MARKER_TTL_SECONDS)

    async def _probe(self, session: AsyncClientSession) -> None:
        await self._markers.find_one({"_id": None}, session=session)

    async def apply(self, run: JobRun, handler: Callable[[], Awaitable[Any]]) -> Any:
        """The handler's result once its effects are committed, or the result of the earlier
        attempt that committed them."""

        async def in_transaction(session: AsyncClientSession) -> Any:
            try:
                await self._markers.insert_one(
                    {"_id": run.id, "attempt": run.attempt, "at": utc_now()}, session=session
                )
            except DuplicateKeyError as exc:
                raise _AppliedAlready from exc
            result = await handler()
            await self._markers.update_one(
                {"_id": run.id}, {"$set": {"result": result_to_store(result)}}, session=session
            )
            return result

        try:
            async with self._db.client.start_session() as session, session.bind(end_session=False):
                return await session.with_transaction(
                    in_transaction,
                    read_concern=ReadConcern("snapshot"),
                    write_concern=WriteConcern("majority"),
                )
        except _AppliedAlready:
            marker = await self._markers.find_one({"_id": run.id})
            return None if marker is None else marker.get("result")
