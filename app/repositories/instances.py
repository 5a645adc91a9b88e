"""The `instances` collection: each instance's heartbeat, for the list of live instances."""

from datetime import datetime, timedelta

from pydantic import BaseModel

from app.db.mongo import Database

COLLECTION = "instances"


class InstanceBeat(BaseModel):
    name: str
    started_at: datetime
    seen_at: datetime
    in_flight: int
    rss_bytes: int
    version: str
    jobs: int


class InstanceRepository:
    def __init__(self, db: Database) -> None:
        self._instances = db[COLLECTION]

    async def beat(self, beat: InstanceBeat) -> None:
        await self._instances.replace_one(
            {"_id": beat.name}, beat.model_dump(exclude={"name"}), upsert=True
        )

    async def gone(self, name: str) -> None:
        await self._instances.delete_one({"_id": name})

    async def seen_since(self, since: datetime) -> list[InstanceBeat]:
        cursor = self._instances.find({"seen_at": {"$gte": since}}).sort("_id", 1)
        return [InstanceBeat.model_validate({**d, "name": d["_id"]}) async for d in cursor]

    async def forget_silent(self, *, now: datetime, after: timedelta) -> int:
        """Instances not heard of for `after`: they are gone (a pod replaced, a process killed)."""
        outcome = await self._instances.delete_many({"seen_at": {"$lt": now - after}})
        return outcome.deleted_count
