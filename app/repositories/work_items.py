"""The `work_items` collection: the outcome of each work item the queue processor handled."""

from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from app.db.mongo import Database
from app.db.upserts import upserted

COLLECTION = "work_items"


class WorkItemRepository:
    def __init__(self, db: Database) -> None:
        self._items = db[COLLECTION]

    async def mark_processed(
        self,
        *,
        item_id: str,
        kind: str,
        data: dict[str, Any],
        run_id: str,
        instance: str,
        at: datetime,
    ) -> int:
        """Records the item as processed by run `run_id`, once however often that run is
        attempted (an attempt whose lease was taken over may have applied it already); returns
        how many runs have processed the item (1 unless it was sent again under another event
        id)."""
        update = {
            "$set": {"kind": kind, "data": data, "run_id": run_id, "instance": instance},
            "$setOnInsert": {"processed_at": at},
            "$inc": {"times_processed": 1},
            "$push": {"runs": run_id},
        }
        try:
            document = await upserted(
                self._items, {"_id": item_id, "runs": {"$ne": run_id}}, update
            )
        except DuplicateKeyError:  # this run applied it already: the upsert found no match
            found = await self._items.find_one({"_id": item_id})
            assert found is not None
            document = found
        return int(document["times_processed"])
