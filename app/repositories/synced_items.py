"""The `synced_items` collection: what the DataSyncWorker brought back, one document per
external id, upserted so that a page fetched twice changes nothing."""

from datetime import datetime
from typing import Any

from pymongo import UpdateOne

from app.db.mongo import Database

COLLECTION = "synced_items"


class SyncedItemRepository:
    def __init__(self, db: Database) -> None:
        self._items = db[COLLECTION]

    async def upsert_many(self, items: list[dict[str, Any]], *, source: str, at: datetime) -> int:
        """Upserts items by their external `id`; returns how many were new."""
        if not items:
            return 0
        result = await self._items.bulk_write(
            [
                UpdateOne(
                    {"_id": str(item["id"])},
                    {
                        "$set": {"data": item, "source": source, "synced_at": at},
                        "$setOnInsert": {"first_synced_at": at},
                    },
                    upsert=True,
                )
                for item in items
            ],
            ordered=False,
        )
        return result.upserted_count
