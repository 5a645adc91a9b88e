"""The database handlers get (`ctx.db`): pymongo's own, with `insert_one` coalesced.

Concurrent `insert_one` calls on one collection go to the server as one `insert_many(ordered=
False)` (app/db/grouped.py): a handler that inserts one document per event then costs what a
batch handler's `insert_many` costs. Each caller still gets its own `InsertOneResult`, or the
`DuplicateKeyError` / `WriteError` of its own document. Only `insert_one` is coalesced: a bulk
write reports each insert's outcome, but only totals for updates, so `update_one` and the rest
are pymongo's own calls. An `insert_one` with a session, a comment, a validation bypass, a raw
BSON document or an unacknowledged write concern is sent on its own, as pymongo would.
"""

from typing import Any

from bson import ObjectId
from bson.raw_bson import RawBSONDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.results import InsertOneResult

from app.db.grouped import GroupedInserts
from app.db.mongo import Database, Document


class CoalescingDatabase(AsyncDatabase[Document]):
    def __init__(self, database: Database, *, timeout_seconds: float) -> None:
        super().__init__(
            database.client,
            database.name,
            codec_options=database.codec_options,
            read_preference=database.read_preference,
            write_concern=database.write_concern,
            read_concern=database.read_concern,
        )
        self._coalesced_timeout = timeout_seconds
        # A collection object holds only its name and options: one per name serves every call.
        self._coalesced_collections: dict[str, CoalescingCollection] = {}

    def __getitem__(self, name: str) -> AsyncCollection[Document]:
        collection = self._coalesced_collections.get(name)
        if collection is None:
            inserts = GroupedInserts(
                AsyncCollection(self, name), timeout_seconds=self._coalesced_timeout
            )
            collection = CoalescingCollection(self, name, inserts=inserts)
            self._coalesced_collections[name] = collection
        return collection

    def get_collection(  # type: ignore[override]
        self, name: str, **options: Any
    ) -> AsyncCollection[Document]:
        if any(value is not None for value in options.values()):
            return super().get_collection(name, **options)
        return self[name]


class CoalescingCollection(AsyncCollection[Document]):
    def __init__(self, database: CoalescingDatabase, name: str, *, inserts: GroupedInserts):
        super().__init__(database, name)
        self._grouped_inserts = inserts

    async def insert_one(
        self,
        document: Document | RawBSONDocument,
        bypass_document_validation: bool | None = None,
        session: AsyncClientSession | None = None,
        comment: Any | None = None,
    ) -> InsertOneResult:
        alone = (
            bypass_document_validation is not None
            or session is not None
            or comment is not None
            or isinstance(document, RawBSONDocument)
            or not self.write_concern.acknowledged
        )
        if alone:
            return await super().insert_one(document, bypass_document_validation, session, comment)
        assert isinstance(document, dict)
        if "_id" not in document:
            document["_id"] = ObjectId()
        await self._grouped_inserts.insert_or_raise(document)
        return InsertOneResult(document["_id"], acknowledged=True)
