"""The `job_runs` collection: one document per run, newest first."""

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel

from app.db.mongo import Database, Document
from app.models.runs import JobRun, RunError, RunStatus

COLLECTION = "job_runs"

INDEXES = [
    IndexModel([("job", ASCENDING), ("_id", DESCENDING)], name="job_newest_first"),
    IndexModel([("status", ASCENDING), ("_id", DESCENDING)], name="status_newest_first"),
]


class RunRepository:
    def __init__(self, db: Database) -> None:
        self._runs = db[COLLECTION]

    async def ensure_indexes(self) -> None:
        await self._runs.create_indexes(INDEXES)

    @staticmethod
    def new_id() -> str:
        return str(ObjectId())

    async def insert(self, run: JobRun) -> None:
        await self._runs.insert_one(_to_document(run))

    async def finish(
        self,
        *,
        run_id: str,
        status: RunStatus,
        finished_at: datetime,
        duration_ms: float,
        result: dict[str, Any] | None = None,
        error: RunError | None = None,
    ) -> None:
        await self._runs.update_one(
            {"_id": ObjectId(run_id)},
            {
                "$set": {
                    "status": status.value,
                    "finished_at": finished_at,
                    "duration_ms": duration_ms,
                    "result": result,
                    "error": error.model_dump() if error else None,
                }
            },
        )

    async def get(self, run_id: str) -> JobRun | None:
        if not ObjectId.is_valid(run_id):
            return None
        document = await self._runs.find_one({"_id": ObjectId(run_id)})
        return _from_document(document) if document else None

    async def list(self, *, job: str | None = None, limit: int = 50) -> list[JobRun]:
        query: Document = {"job": job} if job else {}
        cursor = self._runs.find(query).sort("_id", DESCENDING).limit(limit)
        return [_from_document(document) async for document in cursor]


def _to_document(run: JobRun) -> Document:
    document = run.model_dump(mode="python", exclude={"id"})
    document["_id"] = ObjectId(run.id)
    return document


def _from_document(document: Document) -> JobRun:
    return JobRun.model_validate({**document, "id": str(document["_id"])})
