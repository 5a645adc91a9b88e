"""Reading runs newest first, a window of creation time at a time.

Each query it sends is one equality the collection's indexes lead with (`job` or `status`)
and a range of `_id` (an ObjectId holds its creation time): `job_newest_first` and
`status_newest_first` bound such a query to the window's runs on every server we run on.
Nothing else goes into the query: SecantusDB plans a query with any further field, or with
`$in`, as a scan of the whole collection. So other conditions are checked here, on the runs
of the window; a filter on several jobs, or on none and no status, is asked once per job or
per status and the answers merged.

A server that fetches every run of the window before it sorts (SecantusDB does) costs what the
window holds, so windows are sized by what the last one held: the first is two seconds wide,
an empty one is followed by one eight times wider, and one that held some matching runs by one
sized to hold the rest at the density seen (at most eight times wider). The history reaches
back 400 days. The caller stops reading when it has what it wants or has read its budget.
"""

import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from app.core.clock import utc_now
from app.db.mongo import Document
from app.models.runs import RunStatus

FIRST_WINDOW = timedelta(seconds=2)
MAX_GROWTH = 8
MIN_SHARE = 1 / 32
REACH = timedelta(days=400)
_MISSING = object()


def id_at(moment: datetime) -> ObjectId:
    return ObjectId.from_datetime(moment)


@dataclass(frozen=True)
class Plan:
    """The index-led queries whose union holds the runs wanted, and the equalities (dotted
    paths) a run must also have."""

    led: list[Document]
    checks: dict[str, Any] = field(default_factory=dict)

    def keeps(self, document: Document) -> bool:
        return all(_at(document, path) == value for path, value in self.checks.items())


def plan_for(
    *,
    job: str | None = None,
    jobs: Sequence[str] | None = None,
    status: RunStatus | None = None,
    checks: dict[str, Any] | None = None,
) -> Plan:
    """Leads with the status when it is one of the small sets (all but succeeded), else with
    the job, else with each status."""
    more = dict(checks or {})
    if status is not None and status is not RunStatus.SUCCEEDED:
        if job is not None:
            more["job"] = job
        elif jobs is not None:
            return Plan([{"status": status.value}], more | {"job": _OneOf(jobs)})
        return Plan([{"status": status.value}], more)
    if status is not None:
        more["status"] = status.value
    if job is not None:
        return Plan([{"job": job}], more)
    if jobs is not None:
        return Plan([{"job": name} for name in jobs], more)
    if status is not None:
        return Plan([{"status": status.value}], {k: v for k, v in more.items() if k != "status"})
    return Plan([{"status": each.value} for each in RunStatus], more)


@dataclass(frozen=True)
class Scanned:
    document: Document
    kept: bool


async def newest_first(
    runs: AsyncCollection[Document],
    plan: Plan,
    *,
    wanted: int,
    before: ObjectId | None = None,
    since: datetime | None = None,
    projection: Document | None = None,
) -> AsyncIterator[Scanned]:
    """Every run the plan's queries return, newest first, each marked whether it passes the
    plan's checks, until `wanted` have passed, created before `before` and from `since` on."""
    now = utc_now()
    upper = before or id_at(now.replace(microsecond=0) + timedelta(seconds=2))
    floor = since.astimezone(UTC) if since else now - REACH
    width = FIRST_WINDOW
    kept = scanned = 0
    if projection is not None:
        projection = projection | dict.fromkeys(plan.checks, True)
    while kept < wanted and plan.led:
        top = upper.generation_time
        if top <= floor:
            return
        bottom = max(top - width, floor)
        # About what is still wanted from each query, at the share of runs seen to pass the
        # checks: a query that hits its limit may hold older runs of the window, so the next
        # window starts below the oldest run read.
        share = max(kept / scanned, MIN_SHARE) if scanned else 1.0
        cap = math.ceil((wanted - kept) / share)
        window: list[Document] = []
        lowest = id_at(bottom)
        for led in plan.led:
            cursor = runs.find(
                {**led, "_id": {"$gte": id_at(bottom), "$lt": upper}}, projection=projection
            )
            answer = await cursor.sort("_id", DESCENDING).limit(cap).to_list()
            if len(answer) == cap:
                lowest = max(lowest, answer[-1]["_id"])
            window += answer
        window = sorted(
            (d for d in window if d["_id"] >= lowest), key=lambda d: d["_id"], reverse=True
        )
        held = 0
        scanned += len(window)
        for document in window:
            passes = plan.keeps(document)
            held += passes
            kept += passes
            yield Scanned(document, passes)
            if kept >= wanted:
                return
        read_to = lowest.generation_time
        upper = lowest
        width = _next_width(
            max(top - read_to, timedelta(seconds=1)), held=held, wanted=wanted - kept
        )


def _next_width(width: timedelta, *, held: int, wanted: int) -> timedelta:
    if held == 0:
        return width * MAX_GROWTH
    fitted = width * (wanted / held) * 1.25
    return max(width, min(fitted, width * MAX_GROWTH))


class _OneOf:
    """Equal to any of the values: a check for a filter on several jobs."""

    def __init__(self, values: Sequence[str]) -> None:
        self._values = frozenset(values)

    def __eq__(self, other: object) -> bool:
        return other in self._values

    def __hash__(self) -> int:
        return hash(self._values)


def _at(document: Document, path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part, _MISSING)
        if value is _MISSING:
            return None
    return value
