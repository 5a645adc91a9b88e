"""The `work_items` collection: the outcome of each work item the queue processor handled."""

from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from app.db.mongo import Database

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
        """Records the item as processed; returns how many times it has been (1 unless the
        same item was sent again under another event id)."""
        document = await self._items.find_one_and_update(
            {"_id": item_id},
            {
                "$set": {
                    "kind": kind,
                    "data": data,
                    "run_id": run_id,
                    "instance": instance,
                    "processed_at": at,
                },
                "$inc": {"times_processed": 1},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert document is not None
        return int(document["times_processed"])
