"""An upsert that answers the document it leaves.

`find_one_and_update(..., upsert=True, return_document=AFTER)` answers the document as the
update left it, on mongod always. On SecantusDB's Rust server (0.5.3-beta.196, the local
stack's stand-in) an upsert that loses the race to insert a new key, and is then applied as an
update, answers null though its update was applied (22 of 600 concurrent upserts of 300 new
keys, 2026-12-07): the document is then read back by its `_id`.
"""

from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from app.db.mongo import Document


async def upserted(
    collection: AsyncCollection[Document], query: Document, update: Document
) -> Document:
    """The document the upsert left; `query` names the document by its `_id`."""
    document = await collection.find_one_and_update(
        query, update, upsert=True, return_document=ReturnDocument.AFTER
    )
    if document is None:
        document = await collection.find_one({"_id": _id_of(query)})
    assert document is not None, "an upserted document exists"
    return document


def _id_of(query: Document) -> Any:
    assert "_id" in query, "an upsert read back names its document by _id"
    return query["_id"]
