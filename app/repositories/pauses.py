"""The `paused_jobs` collection: jobs an operator paused. A cron binding still fires; the tick
is answered without a run, so that resuming needs no change to the component. An event
handler's or queue processor's deliveries are stored as runs that wait until it is resumed
(or, with `drop`, recorded as skipped)."""

from datetime import datetime

from pydantic import BaseModel

from app.db.mongo import Database

COLLECTION = "paused_jobs"


class Pause(BaseModel):
    job: str
    paused_at: datetime
    by: str
    skipped_firings: int = 0
    drop: bool = False
    """Deliveries while paused are recorded as skipped runs rather than kept to run later."""


class PauseRepository:
    def __init__(self, db: Database) -> None:
        self._pauses = db[COLLECTION]

    async def pause(self, pause: Pause) -> None:
        await self._pauses.replace_one(
            {"_id": pause.job}, pause.model_dump(exclude={"job"}), upsert=True
        )

    async def resume(self, job: str) -> bool:
        return (await self._pauses.delete_one({"_id": job})).deleted_count == 1

    async def skip_firing(self, job: str) -> bool:
        """True when `job` is paused, counting the firing it skips (one request either way)."""
        document = await self._pauses.find_one_and_update(
            {"_id": job}, {"$inc": {"skipped_firings": 1}}
        )
        return document is not None

    async def get(self, job: str) -> Pause | None:
        document = await self._pauses.find_one({"_id": job})
        return Pause.model_validate({**document, "job": job}) if document else None

    async def all(self) -> dict[str, Pause]:
        return {
            d["_id"]: Pause.model_validate({**d, "job": d["_id"]})
            async for d in self._pauses.find()
        }
