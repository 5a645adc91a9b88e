"""The `run_stats` collection: per job, runs by status and latency histograms, by minute (the
last hour's chart and percentiles) and by hour (the last day's). Written by each instance's
heartbeat (`app.observability.run_stats`), read by the dashboard."""

from collections import Counter
from datetime import datetime
from typing import Literal

from pymongo import ASCENDING, IndexModel, UpdateOne

from app.db.mongo import Database, Document
from app.observability.tally import Tally

COLLECTION = "run_stats"
Period = Literal["minute", "hour"]

INDEXES = [IndexModel([("period", ASCENDING), ("start", ASCENDING)], name="period_start")]


class RunStatsRepository:
    def __init__(self, db: Database) -> None:
        self._stats = db[COLLECTION]

    async def ensure_indexes(self) -> None:
        await self._stats.create_indexes(INDEXES)

    async def add(self, tallies: list[Tally]) -> None:
        """Adds each tally to its minute and to its hour; instances add to the same documents."""
        writes: list[UpdateOne] = []
        for tally in tallies:
            increments: Document = {f"statuses.{k}": n for k, n in tally.statuses.items()}
            increments |= {f"duration.{k}": n for k, n in tally.duration.items()}
            increments |= {f"wait.{k}": n for k, n in tally.wait.items()}
            hour = tally.start.replace(minute=0)
            for period, start in (("minute", tally.start), ("hour", hour)):
                writes.append(
                    UpdateOne(
                        {"_id": f"{period}|{start.isoformat()}|{tally.job}"},
                        {
                            "$inc": increments,
                            "$setOnInsert": {
                                "period": period,
                                "start": start,
                                "job": tally.job,
                                "kind": tally.kind,
                            },
                        },
                        upsert=True,
                    )
                )
        if writes:
            await self._stats.bulk_write(writes, ordered=False)

    async def since(self, *, period: Period, start: datetime) -> list[Tally]:
        cursor = self._stats.find({"period": period, "start": {"$gte": start}})
        return [_out(document) async for document in cursor]

    async def delete_before(self, *, cutoff: datetime) -> int:
        return (await self._stats.delete_many({"start": {"$lt": cutoff}})).deleted_count


def _out(document: Document) -> Tally:
    def counter(name: str) -> Counter[int]:
        return Counter({int(k): int(v) for k, v in (document.get(name) or {}).items()})

    return Tally(
        job=document["job"],
        kind=document["kind"],
        start=document["start"],
        statuses=Counter({k: int(v) for k, v in (document.get("statuses") or {}).items()}),
        duration=counter("duration"),
        wait=counter("wait"),
    )
