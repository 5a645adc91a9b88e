"""The `customers`, `orders` and `customer_summaries` collections of the summary processor."""

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.errors import BulkWriteError

from app.db.mongo import Database

DUPLICATE_KEY = 11000


class CustomerRepository:
    def __init__(self, db: Database) -> None:
        self._customers = db["customers"]
        self._orders = db["orders"]
        self._summaries = db["customer_summaries"]

    async def ensure_indexes(self) -> None:
        await self._orders.create_index([("customer_id", ASCENDING)], name="by_customer")

    async def count(self) -> int:
        return await self._customers.count_documents({})

    async def ids_after(self, after: str | None, *, limit: int) -> list[str]:
        query = {"_id": {"$gt": after}} if after is not None else {}
        cursor = self._customers.find(query, projection={"_id": True}).sort("_id", ASCENDING)
        return [document["_id"] async for document in cursor.limit(limit)]

    async def order_totals(self, customer_ids: list[str]) -> dict[str, dict[str, Any]]:
        cursor = await self._orders.aggregate(
            [
                {"$match": {"customer_id": {"$in": customer_ids}}},
                {
                    "$group": {
                        "_id": "$customer_id",
                        "orders": {"$sum": 1},
                        "total_amount": {"$sum": "$amount"},
                    }
                },
            ]
        )
        return {row["_id"]: row async for row in cursor}

    async def summaries_written_by(self, run_id: str) -> int:
        return await self._summaries.count_documents({"run_id": run_id})

    async def apply_summaries(
        self, summaries: dict[str, dict[str, Any]], *, run_id: str, at: datetime
    ) -> int:
        """Writes each summary once per run: a summary this run wrote already is left alone,
        so a chunk replayed after a crash changes nothing. Returns how many were written."""
        operations = [
            UpdateOne(
                {"_id": customer_id, "run_id": {"$ne": run_id}},
                {
                    "$set": {
                        "orders": summary["orders"],
                        "total_amount": summary["total_amount"],
                        "computed_at": at,
                        "run_id": run_id,
                    },
                    "$inc": {"applications": 1},
                },
                upsert=True,
            )
            for customer_id, summary in summaries.items()
        ]
        if not operations:
            return 0
        try:
            result = await self._summaries.bulk_write(operations, ordered=False)
        except BulkWriteError as exc:
            # The upsert of a summary this run already wrote collides with it: that is the
            # "already applied" case. Anything else is a real error.
            details = exc.details
            if any(e["code"] != DUPLICATE_KEY for e in details.get("writeErrors", [])):
                raise
            return int(details.get("nModified", 0)) + int(details.get("nUpserted", 0))
        return result.modified_count + result.upserted_count
