"""The `domain_events` collection: every domain event applied, keyed by its CloudEvent id."""

from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from app.db.mongo import Database

COLLECTION = "domain_events"


class DomainEventRepository:
    def __init__(self, db: Database) -> None:
        self._events = db[COLLECTION]

    async def record(
        self,
        *,
        event_id: str,
        topic: str,
        data: Any,
        received_at: datetime,
        run_id: str,
    ) -> bool:
        """Stores the event once; False when this event id was stored before (a redelivery)."""
        try:
            await self._events.insert_one(
                {
                    "_id": event_id,
                    "topic": topic,
                    "data": data,
                    "received_at": received_at,
                    "run_id": run_id,
                }
            )
        except DuplicateKeyError:
            return False
        return True
