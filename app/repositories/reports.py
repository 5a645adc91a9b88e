"""The `reports` collection: one document per report and period, replaced when regenerated."""

from typing import Any

from app.db.mongo import Database

COLLECTION = "reports"


class ReportRepository:
    def __init__(self, db: Database) -> None:
        self._reports = db[COLLECTION]

    async def save(self, *, report_id: str, report: dict[str, Any]) -> None:
        await self._reports.replace_one({"_id": report_id}, report, upsert=True)

    async def get(self, report_id: str) -> dict[str, Any] | None:
        return await self._reports.find_one({"_id": report_id})
