"""The `schedules` collection: the Jobs API schedules this service created, for listing (the
sidecar can get a job by name but not list them) and for knowing which job a firing starts."""

from datetime import datetime
from typing import Any

from pymongo import ASCENDING

from app.db.mongo import Database
from app.models.schedules import JobSchedule, ScheduleSpec

COLLECTION = "schedules"


class ScheduleRepository:
    def __init__(self, db: Database) -> None:
        self._schedules = db[COLLECTION]

    async def upsert(self, name: str, spec: ScheduleSpec, *, asked_at: datetime) -> JobSchedule:
        """`asked_at`: when the sidecar was asked to create the job (its periods' anchor)."""
        await self._schedules.update_one(
            {"_id": name},
            {
                "$set": {
                    "job": spec.job,
                    "cron": spec.cron,
                    "due_time": spec.due_time,
                    "payload": spec.payload,
                    "anchored_at": asked_at,
                    "paused_at": None,
                },
                "$setOnInsert": {"created_at": asked_at},
            },
            upsert=True,
        )
        schedule = await self.get(name)
        assert schedule is not None
        return schedule

    async def set_paused(self, name: str, *, paused_at: datetime | None) -> bool:
        outcome = await self._schedules.update_one(
            {"_id": name}, {"$set": {"paused_at": paused_at}}
        )
        return outcome.matched_count == 1

    async def get(self, name: str) -> JobSchedule | None:
        document = await self._schedules.find_one({"_id": name})
        return _out(document) if document else None

    async def delete(self, name: str) -> bool:
        return (await self._schedules.delete_one({"_id": name})).deleted_count == 1

    async def list(self) -> list[JobSchedule]:
        cursor = self._schedules.find().sort("_id", ASCENDING)
        return [_out(document) async for document in cursor]


def _out(document: dict[str, Any]) -> JobSchedule:
    return JobSchedule.model_validate({**document, "name": document["_id"]})
