"""The `audit_log` collection: every operator action (who, what, when, on which runs), from the
dashboard and the operator API alike."""

from datetime import datetime

from bson import ObjectId
from pydantic import BaseModel, Field
from pymongo import DESCENDING

from app.db.mongo import Database, Document

COLLECTION = "audit_log"


class AuditEntry(BaseModel):
    id: str = ""
    at: datetime
    who: str = Field(description="the name given at login, or `api` for a bearer-token call")
    role: str
    action: str = Field(description="cancel, retry, requeue, requeue-matching, trigger, ...")
    target: str = Field(description="what it acted on: a run id, a job or a schedule")
    run_ids: list[str] = []
    detail: str = ""
    client: str | None = None


class AuditRepository:
    def __init__(self, db: Database) -> None:
        self._log = db[COLLECTION]

    async def record(self, entry: AuditEntry) -> None:
        await self._log.insert_one(entry.model_dump(exclude={"id"}))

    async def newest(self, *, limit: int, before: str | None = None) -> list[AuditEntry]:
        query: Document = {}
        if before and ObjectId.is_valid(before):
            query["_id"] = {"$lt": ObjectId(before)}
        cursor = self._log.find(query).sort("_id", DESCENDING).limit(limit)
        return [AuditEntry.model_validate({**d, "id": str(d["_id"])}) async for d in cursor]
