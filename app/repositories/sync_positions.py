"""The `sync_positions` collection: where each integration task stopped, so that its next run
fetches only what is new."""

from typing import Any

from app.core.clock import utc_now
from app.db.mongo import Database

COLLECTION = "sync_positions"


class SyncPositionRepository:
    def __init__(self, db: Database) -> None:
        self._positions = db[COLLECTION]

    async def get(self, key: str) -> Any:
        document = await self._positions.find_one({"_id": key})
        return document["position"] if document else None

    async def set(self, key: str, position: Any) -> None:
        await self._positions.update_one(
            {"_id": key}, {"$set": {"position": position, "updated_at": utc_now()}}, upsert=True
        )
