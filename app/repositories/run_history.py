"""Reading the run history (`job_runs`) for operators: pages of runs newest first with their
filters, the newest run of a job, counts of the small sets, and the dead set grouped by
failure. Every read goes a window of creation time at a time (`newest_first`), so that its
cost follows the runs it returns, not the size of the history."""

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from bson import ObjectId

from app.db.mongo import Database, Document
from app.models.failures import FailureGroup, fingerprint_of, normalised
from app.models.run_query import RunQuery
from app.models.runs import JobRun, RunStatus
from app.repositories.newest_first import Plan, Scanned, id_at, newest_first, plan_for
from app.repositories.runs import COLLECTION, run_of

# How many runs one page of a search may read for the filters no index serves (free text,
# trigger type); a page cut there says so, and its `next` goes on from where it stopped.
SCAN_BUDGET = 2_000
# How many of the newest dead runs the failure groups on a page are made of; an action on a
# group (requeue all that match) reads up to `DEAD_SET_ACTION_SCAN`.
DEAD_SET_PAGE_SCAN = 1_000
DEAD_SET_ACTION_SCAN = 20_000
_ERROR_FIELDS = {"job": True, "error.type": True, "error.message": True, "finished_at": True}


@dataclass
class RunPage:
    runs: list[JobRun]
    next: str | None
    scanned: int
    cut_by_budget: bool = False


class RunHistory:
    def __init__(self, db: Database) -> None:
        self._runs = db[COLLECTION]

    async def search(
        self, query: RunQuery, *, kind_jobs: Sequence[str] | None = None, budget: int = SCAN_BUDGET
    ) -> RunPage:
        """A page of runs, newest first, read from at most `budget` runs (a page cut there
        says so; its `next` goes on from where the reading stopped)."""
        before = (
            ObjectId(query.before) if query.before and ObjectId.is_valid(query.before) else None
        )
        if query.until is not None:
            until = id_at(query.until)
            before = min(before, until) if before else until
        plan = plan_for(
            job=query.job,
            jobs=kind_jobs if query.kind is not None and not query.job else None,
            status=query.status,
            checks={"trigger.type": query.trigger} if query.trigger else None,
        )
        found: list[JobRun] = []
        scanned = 0
        last_id: str | None = None
        # Free text is matched here, after the plan's checks: read on until the budget.
        wanted = budget + 1 if query.text else query.limit
        async for seen in newest_first(
            self._runs, plan, wanted=wanted, before=before, since=query.since
        ):
            if scanned == budget:
                return RunPage(found, last_id, scanned, cut_by_budget=True)
            scanned += 1
            last_id = str(seen.document["_id"])
            if seen.kept and _has_text(seen.document, query.text):
                found.append(run_of(seen.document))
                if len(found) == query.limit:
                    return RunPage(found, last_id, scanned)
        return RunPage(found, None, scanned)

    async def list_runs(
        self,
        *,
        job: str | None = None,
        status: RunStatus | None = None,
        limit: int = 50,
        before: str | None = None,
        dead_set: bool = False,
    ) -> list[JobRun]:
        """Newest first; `before` is the id of the last run of the previous page."""
        if dead_set:
            status = RunStatus.DEAD
        plan = plan_for(job=job, status=status, checks={"requeued_as": None} if dead_set else None)
        runs: list[JobRun] = []
        async for seen in self._read(
            plan,
            wanted=limit,
            before=ObjectId(before) if before and ObjectId.is_valid(before) else None,
        ):
            runs.append(run_of(seen.document))
        return runs

    async def steps_of(self, parent_run_id: str, *, limit: int = 500) -> list[JobRun]:
        """A workflow run's steps, in the order they were made."""
        cursor = self._runs.find({"parent_run_id": parent_run_id}).limit(limit)
        steps = [run_of(document) async for document in cursor]
        return sorted(steps, key=lambda step: step.id)

    async def latest(self, *, job: str) -> JobRun | None:
        runs = await self.list_runs(job=job, limit=1)
        return runs[0] if runs else None

    async def last_fired(self, *, job: str, schedule: str | None = None) -> JobRun | None:
        """The newest run of a cron binding's ticks (or of one Jobs API schedule's firings)."""
        checks = {"trigger.type": "cron"} if schedule is None else {"trigger.schedule": schedule}
        async for seen in self._read(plan_for(job=job, checks=checks), wanted=1):
            return run_of(seen.document)
        return None

    async def count(self, *, status: RunStatus, dead_set: bool = False) -> int:
        query: Document = {"status": status.value}
        if dead_set:
            query["requeued_as"] = None
        return await self._runs.count_documents(query)

    async def failure_groups(
        self, *, job: str | None = None, scan: int = DEAD_SET_PAGE_SCAN
    ) -> list[FailureGroup]:
        """The newest `scan` dead runs grouped by failure fingerprint, largest group first."""
        groups: dict[str, FailureGroup] = {}
        async for document in self._dead_set(job=job, scan=scan):
            error = document.get("error") or {}
            error_type, message = error.get("type", "Unknown"), error.get("message", "")
            key = fingerprint_of(error_type, message)
            group = groups.get(key)
            if group is None:
                group = groups[key] = FailureGroup(
                    fingerprint=key,
                    error_type=error_type,
                    message=normalised(message),
                    example=message[:500],
                )
            group.add(job=document["job"], at=document.get("finished_at"))
        return sorted(groups.values(), key=lambda g: (-g.count, g.fingerprint))

    async def dead_ids_matching(
        self, *, job: str | None, fingerprint: str | None, scan: int = DEAD_SET_ACTION_SCAN
    ) -> list[str]:
        """The ids of dead runs (not requeued) of `job` whose failure has `fingerprint`."""
        matching: list[str] = []
        async for document in self._dead_set(job=job, scan=scan):
            error = document.get("error") or {}
            key = fingerprint_of(error.get("type", "Unknown"), error.get("message", ""))
            if fingerprint is None or key == fingerprint:
                matching.append(str(document["_id"]))
        return matching

    async def _dead_set(self, *, job: str | None, scan: int) -> AsyncIterator[Document]:
        plan = plan_for(job=job, status=RunStatus.DEAD, checks={"requeued_as": None})
        async for seen in self._read(plan, wanted=scan, projection=_ERROR_FIELDS, budget=scan):
            yield seen.document

    async def _read(
        self,
        plan: Plan,
        *,
        wanted: int,
        before: ObjectId | None = None,
        projection: Document | None = None,
        budget: int = SCAN_BUDGET,
    ) -> AsyncIterator[Scanned]:
        """The runs that pass the plan, newest first, from at most `budget` runs read."""
        scanned = 0
        async for seen in newest_first(
            self._runs, plan, wanted=wanted, before=before, projection=projection
        ):
            scanned += 1
            if seen.kept:
                yield seen
            if scanned >= budget:
                return


def _has_text(document: Document, text: str | None) -> bool:
    """Free text, case-insensitive, in the payload, result or error."""
    if not text:
        return True
    haystack = json.dumps(
        [document.get("payload"), document.get("result"), document.get("error")], default=str
    )
    return text.casefold() in haystack.casefold()
