"""The `job_runs` collection: one document per run, the history and the durable run queue.

A run that waits for an attempt (`pending`, or `failed` with a retry due) is claimed atomically
by one instance, which holds a lease on it while it works and renews it. A lease that runs out
(its instance died) makes the run claimable again. Every write that finishes an attempt is
conditional on the lease owner, so a stale instance cannot overwrite a run another took over.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from app.core.errors import Refused
from app.db.grouped import GroupedInserts, GroupedLookups
from app.db.mongo import Database, Document
from app.models.runs import Attempt, JobRun, Progress, Refusal, RunError, RunStatus

COLLECTION = "job_runs"
FINISHED = [RunStatus.SUCCEEDED.value, RunStatus.DEAD.value, RunStatus.CANCELLED.value]

INDEXES = [
    # One run per occurrence (event id, cron tick): the second line of defence against
    # duplicate work. Sparse: manual triggers carry no key.
    IndexModel(
        [("dedupe_key", ASCENDING)], name="one_run_per_occurrence", unique=True, sparse=True
    ),
    # One run at most waits behind a running run of a `buffer_one` job, however many ticks
    # read the job's runs at once (app/dispatch/overlap.py).
    IndexModel(
        [("waits_behind", ASCENDING)], name="one_run_waiting_behind", unique=True, sparse=True
    ),
    IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)], name="due_runs"),
    IndexModel([("job", ASCENDING), ("_id", DESCENDING)], name="job_newest_first"),
    IndexModel([("status", ASCENDING), ("_id", DESCENDING)], name="status_newest_first"),
    IndexModel([("finished_at", ASCENDING)], name="finished_at"),
    # A workflow's steps; partial, so that no other run pays for it.
    IndexModel(
        [("parent_run_id", ASCENDING)],
        name="workflow_steps",
        partialFilterExpression={"parent_run_id": {"$type": "string"}},
    ),
]
# Every index costs each write of every run. These served queries that a status-led index
# serves as well: running runs (expired leases, key sequences' orphans) number no more than
# the instances' in-flight runs, and waiting runs of key sequences are found among waiting runs.
OBSOLETE_INDEXES = {"expired_leases", "key_sequences"}
# A grouped request the server does not answer within this fails its callers, who retry.
GROUP_TIMEOUT_SECONDS = 10.0


class RunRepository:
    def __init__(self, db: Database) -> None:
        self._runs = db[COLLECTION]
        # Concurrent runs' inserts and occurrence lookups go as one request each (group commit).
        self._inserts = GroupedInserts(self._runs, timeout_seconds=GROUP_TIMEOUT_SECONDS)
        self._occurrences = GroupedLookups(
            self._runs, "dedupe_key", timeout_seconds=GROUP_TIMEOUT_SECONDS
        )

    async def ensure_indexes(self) -> None:
        existing = {index["name"] async for index in await self._runs.list_indexes()}
        for name in existing & OBSOLETE_INDEXES:
            await self._runs.drop_index(name)
        await self._runs.create_indexes(INDEXES)

    @staticmethod
    def new_id() -> str:
        return str(ObjectId())

    @staticmethod
    def occurrence_id(*, job: str, dedupe_key: str, at: datetime) -> str:
        """The id of the run of one occurrence (an event), the same on every instance and
        every redelivery: its creation second `at` (the event's publish time), then a hash of
        (job, occurrence). A handler idempotent per run id thus applies a redelivered event
        once even when the first delivery's run was never stored (its instance died)."""
        digest = hashlib.blake2b(f"{job}|{dedupe_key}".encode(), digest_size=8).digest()
        return str(ObjectId(int(at.timestamp()).to_bytes(4, "big") + digest))

    # -- creating --------------------------------------------------------------------------

    async def insert(
        self,
        run: JobRun,
        *,
        dedupe_key: str | None = None,
        lease_until: datetime | None = None,
        behind: str | None = None,
    ) -> bool:
        """Stores a new run; False when a run with the same `dedupe_key` (or id) exists
        already, or, with `behind`, another run waits behind that run. Concurrent inserts go to
        the server together."""
        document = _to_document(run)
        if dedupe_key is not None:
            document["dedupe_key"] = f"{run.job}|{dedupe_key}"
        if behind is not None:
            document["waits_behind"] = f"{run.job}|{behind}"
        if lease_until is not None:
            document["lease_until"] = lease_until
        return await self._inserts.insert(document)

    async def has_occurrence(self, *, job: str, dedupe_key: str) -> bool:
        """Whether the occurrence has a run already; concurrent lookups go as one `$in`."""
        return await self._occurrences.exists(f"{job}|{dedupe_key}")

    async def find_by_dedupe_key(self, *, job: str, dedupe_key: str) -> JobRun | None:
        document = await self._runs.find_one({"dedupe_key": f"{job}|{dedupe_key}"})
        return run_of(document) if document else None

    # -- claiming and leases -----------------------------------------------------------------

    async def claim_due(
        self,
        *,
        instance: str,
        now: datetime,
        lease_until: datetime,
        jobs: Sequence[str],
        run_id: str | None = None,
        closed_gates: Sequence[str] = (),
    ) -> "Claimed | None":
        """Takes one run that is waiting for an attempt, or whose owner's lease ran out (an
        orphan: `Claimed.orphaned` has it as its dead owner left it). Runs of `closed_gates`
        (full when this instance last asked) are left to wait.

        Without `run_id`, runs that belong to a key sequence are left out: their key's actor
        takes them (`claim_due(run_id=...)` on the instance that hosts it)."""
        scope: Document = {"job": {"$in": list(jobs)}}
        if closed_gates:
            scope["gate"] = {"$nin": list(closed_gates)}
        if run_id is not None:
            scope["_id"] = _oid(run_id)
        else:
            scope["sequence_key"] = None
        queued: Document = {"status": RunStatus.PENDING.value}
        if run_id is None:  # a run named by id is wanted now, whatever it was held for
            queued["next_attempt_at"] = {"$lte": now}
        claims: list[tuple[Document, Document]] = [
            # a first attempt that was queued
            (queued, {}),
            # the next attempt of a failed run
            (
                {"status": RunStatus.FAILED.value, "next_attempt_at": {"$lte": now}},
                {"$inc": {"attempt": 1}},
            ),
            # a run whose instance stopped renewing its lease: it died mid-attempt
            (
                {"status": RunStatus.RUNNING.value, "lease_until": {"$lt": now}},
                {"$inc": {"attempt": 1}},
            ),
        ]
        claimed_fields = {
            "status": RunStatus.RUNNING.value,
            "instance": instance,
            "lease_until": lease_until,
            "attempt_started_at": now,
            "next_attempt_at": None,
        }
        for query, extra in claims:
            orphaned = query["status"] == RunStatus.RUNNING.value
            document = await self._runs.find_one_and_update(
                {**query, **scope},
                {"$set": claimed_fields, "$unset": {"held_reason": ""}, **extra},
                sort=[("next_attempt_at", ASCENDING), ("_id", ASCENDING)],
                # For an orphan, the document as its dead owner left it.
                return_document=ReturnDocument.BEFORE if orphaned else ReturnDocument.AFTER,
            )
            if document is None:
                continue
            if not orphaned:
                return Claimed(run_of(document))
            after = {**document, **claimed_fields, "attempt": document["attempt"] + 1}
            return Claimed(run_of(after), orphaned=run_of(document))
        return None

    async def add_attempt(self, *, run_id: str, attempt: Attempt) -> JobRun:
        """Keeps an attempt on the run (one its instance lost with it); the run as it is now."""
        updated = await self._runs.find_one_and_update(
            {"_id": _oid(run_id)},
            {"$push": {"attempts": attempt.model_dump()}},
            return_document=ReturnDocument.AFTER,
        )
        assert updated is not None, "a claimed run is not deleted"
        return run_of(updated)

    async def mark_started(self, *, run_id: str, now: datetime) -> None:
        """The run's first attempt began now (a queued run's `started_at`)."""
        await self._runs.update_one({"_id": _oid(run_id)}, {"$set": {"started_at": now}})

    async def bury(
        self, *, run_id: str, instance: str, now: datetime, attempt: int, error: RunError
    ) -> bool:
        """A run this instance claimed goes dead without an attempt (its attempts are spent)."""
        outcome = await self._runs.update_one(
            _owned(run_id, instance),
            {
                "$set": {
                    "status": RunStatus.DEAD.value,
                    "attempt": attempt,
                    "finished_at": now,
                    "error": error.model_dump(),
                },
                "$unset": {"lease_until": "", "attempt_started_at": ""},
            },
        )
        return outcome.modified_count == 1

    async def due_in_sequence(
        self, *, now: datetime, jobs: Sequence[str], limit: int
    ) -> list[JobRun]:
        """Runs of key sequences that wait for an attempt (or were orphaned), oldest first.

        Two queries, each led by an indexed status, rather than one `$or`: the history holds
        mostly finished runs, and a scan of it on every poll would load the database."""
        scope = {"job": {"$in": list(jobs)}, "sequence_key": {"$ne": None}}
        waiting = {
            "status": {"$in": [RunStatus.PENDING.value, RunStatus.FAILED.value]},
            "next_attempt_at": {"$lte": now},
        }
        orphaned = {"status": RunStatus.RUNNING.value, "lease_until": {"$lt": now}}
        found: list[JobRun] = []
        for query in (waiting, orphaned):
            cursor = self._runs.find({**query, **scope}).sort("_id", ASCENDING).limit(limit)
            found += [run_of(document) async for document in cursor]
        return sorted(found, key=lambda run: run.id)[:limit]

    async def hold(self, *, run_id: str, until: datetime) -> bool:
        """Puts a waiting run's next attempt off until `until`; False if it is not waiting."""
        outcome = await self._runs.update_one(
            {
                "_id": _oid(run_id),
                "status": {"$in": [RunStatus.PENDING.value, RunStatus.FAILED.value]},
            },
            {"$set": {"next_attempt_at": until}},
        )
        return outcome.modified_count == 1

    async def hold_back(
        self, *, run_id: str, instance: str, until: datetime, reason: str, unstarted: bool
    ) -> bool:
        """A run this instance claimed waits again, `pending` until `until`, with the reason,
        its attempt not made (`unstarted`: it never started before)."""
        unset: Document = {"lease_until": "", "attempt_started_at": ""}
        if unstarted:
            unset["started_at"] = ""
        outcome = await self._runs.update_one(
            _owned(run_id, instance),
            {
                "$set": {
                    "status": RunStatus.PENDING.value,
                    "instance": None,
                    "next_attempt_at": until,
                    "held_reason": reason,
                },
                "$unset": unset,
            },
        )
        return outcome.modified_count == 1

    async def add_died_attempt(
        self,
        *,
        run_id: str,
        attempts_before: int,
        attempt: Attempt,
        dead_error: RunError | None,
        next_attempt_at: datetime,
        now: datetime,
    ) -> bool:
        """Keeps an attempt that died with its instance on a waiting run (unless it changed
        since it was read): dead with `dead_error` when its attempts are spent, else retried."""
        update: Document = (
            {"status": RunStatus.DEAD.value, "finished_at": now, "error": dead_error.model_dump()}
            if dead_error is not None
            else {"status": RunStatus.FAILED.value, "next_attempt_at": next_attempt_at}
        )
        outcome = await self._runs.update_one(
            {
                "_id": _oid(run_id),
                "status": {"$in": [RunStatus.PENDING.value, RunStatus.FAILED.value]},
                "attempts": {"$size": attempts_before},
            },
            {
                "$set": {**update, "attempt": attempt.attempt},
                "$push": {"attempts": attempt.model_dump()},
            },
        )
        return outcome.modified_count == 1

    async def unfinished_of(self, job: str, *, limit: int = 10) -> list[JobRun]:
        """Runs of `job` that have not finished (running, or waiting for an attempt), oldest
        first. Led by the status index: a job's history may be long, its live runs are few."""
        cursor = (
            self._runs.find(
                {
                    "status": {"$in": [s.value for s in RunStatus if not s.finished]},
                    "job": job,
                },
                projection={"payload": False, "result": False, "attempts": False},
            )
            .hint("status_newest_first")
            .limit(limit)
        )
        return sorted([run_of(document) async for document in cursor], key=lambda run: run.id)

    async def note_refusal(self, *, job: str, dedupe_key: str, refusal: Refusal) -> None:
        """Records on the run of an occurrence that a second run for it was refused, and why."""
        await self._runs.update_one(
            {"dedupe_key": f"{job}|{dedupe_key}"}, {"$push": {"refusals": refusal.model_dump()}}
        )

    async def hand_over(
        self, *, run_id: str, instance: str, holder: str, lease_until: datetime
    ) -> bool:
        """Gives a run this instance claimed back to the instance the lease actor says holds it."""
        outcome = await self._runs.update_one(
            _owned(run_id, instance), {"$set": {"instance": holder, "lease_until": lease_until}}
        )
        return outcome.modified_count == 1

    async def renew_lease(
        self,
        *,
        run_id: str,
        instance: str,
        lease_until: datetime,
        progress: Progress | None = None,
        checkpoint: Any = None,
        save_checkpoint: bool = False,
    ) -> bool | None:
        """Extends the lease (and saves progress). None when this instance no longer owns the
        run; otherwise whether an operator asked to cancel it."""
        update: Document = {"lease_until": lease_until}
        if progress is not None:
            update["progress"] = progress.model_dump()
        if save_checkpoint:
            update["checkpoint"] = checkpoint
        document = await self._runs.find_one_and_update(
            _owned(run_id, instance),
            {"$set": update},
            projection={"cancel_requested": True},
            return_document=ReturnDocument.AFTER,
        )
        if document is None:
            return None
        return bool(document.get("cancel_requested"))

    async def finish_attempt(
        self,
        *,
        run_id: str,
        instance: str,
        status: RunStatus,
        attempt: Attempt,
        finished_at: datetime | None,
        duration_ms: float | None,
        result: dict[str, Any] | None = None,
        error: RunError | None = None,
        next_attempt_at: datetime | None = None,
    ) -> bool:
        """Records the end of an attempt; False when this instance no longer owns the run."""
        outcome = await self._runs.update_one(
            _owned(run_id, instance),
            {
                "$set": {
                    "status": status.value,
                    "finished_at": finished_at,
                    "duration_ms": duration_ms,
                    "result": result,
                    "error": error.model_dump() if error else None,
                    "next_attempt_at": next_attempt_at,
                },
                "$unset": {"lease_until": "", "attempt_started_at": ""},
                "$push": {"attempts": attempt.model_dump()},
            },
        )
        return outcome.modified_count == 1

    async def release(self, *, run_id: str, instance: str, now: datetime) -> bool:
        """Hands a running run back to the queue (graceful shutdown): any instance takes it."""
        outcome = await self._runs.update_one(
            _owned(run_id, instance),
            {
                "$set": {"status": RunStatus.PENDING.value, "next_attempt_at": now},
                "$unset": {"lease_until": "", "attempt_started_at": ""},
            },
        )
        return outcome.modified_count == 1

    # -- operator actions --------------------------------------------------------------------

    async def cancel_waiting(self, *, run_id: str, now: datetime) -> JobRun | None:
        """Cancels a run that is not being worked on (pending, or failed awaiting a retry)."""
        document = await self._runs.find_one_and_update(
            {
                "_id": _oid(run_id),
                "status": {"$in": [RunStatus.PENDING.value, RunStatus.FAILED.value]},
            },
            {
                "$set": {
                    "status": RunStatus.CANCELLED.value,
                    "finished_at": now,
                    "next_attempt_at": None,
                    "cancel_requested": True,
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        return run_of(document) if document else None

    async def request_cancel(self, *, run_id: str) -> JobRun | None:
        """Flags a running run; its handler stops at the next chunk boundary."""
        document = await self._runs.find_one_and_update(
            {"_id": _oid(run_id), "status": RunStatus.RUNNING.value},
            {"$set": {"cancel_requested": True}},
            return_document=ReturnDocument.AFTER,
        )
        return run_of(document) if document else None

    async def retry_now(self, *, run_id: str, now: datetime) -> JobRun | None:
        """Brings a failed run's next attempt forward to now."""
        document = await self._runs.find_one_and_update(
            {"_id": _oid(run_id), "status": RunStatus.FAILED.value},
            {"$set": {"next_attempt_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        return run_of(document) if document else None

    async def mark_requeued(self, *, run_id: str, new_run_id: str) -> bool:
        """Takes a dead run out of the dead set, once: False if it was requeued already."""
        outcome = await self._runs.update_one(
            {"_id": _oid(run_id), "status": RunStatus.DEAD.value, "requeued_as": None},
            {"$set": {"requeued_as": new_run_id}},
        )
        return outcome.modified_count == 1

    async def mark_suspended(self, *, run_id: str, at: datetime | None) -> JobRun | None:
        """Notes that a workflow run's instance is suspended since `at` (None: resumed); None
        when the run has finished meanwhile."""
        document = await self._runs.find_one_and_update(
            {"_id": _oid(run_id), "status": {"$nin": FINISHED}},
            {"$set": {"suspended_at": at}},
            return_document=ReturnDocument.AFTER,
        )
        return run_of(document) if document else None

    async def steps_settled_at(self, parent_run_id: str) -> datetime | None:
        """When the last of a workflow run's steps ended, if every step has ended (None while
        one runs, or when it has none)."""
        newest: datetime | None = None
        async for step in self._runs.find(
            {"parent_run_id": parent_run_id}, {"status": 1, "finished_at": 1}
        ):
            if step["status"] not in FINISHED or step.get("finished_at") is None:
                return None
            newest = max(newest or step["finished_at"], step["finished_at"])
        return newest

    async def mark_purged(self, *, run_id: str, at: datetime) -> JobRun | None:
        """Notes that a finished workflow run's instance state was purged."""
        document = await self._runs.find_one_and_update(
            {"_id": _oid(run_id), "status": {"$in": FINISHED}},
            {"$set": {"purged_at": at}},
            return_document=ReturnDocument.AFTER,
        )
        return run_of(document) if document else None

    # -- reading -----------------------------------------------------------------------------

    async def get(self, run_id: str) -> JobRun | None:
        if not ObjectId.is_valid(run_id):
            return None
        document = await self._runs.find_one({"_id": ObjectId(run_id)})
        return run_of(document) if document else None

    async def finished_between(self, *, start: datetime, end: datetime) -> list[Document]:
        """The finished runs of a period, reduced to what a report needs."""
        cursor = self._runs.find(
            {"finished_at": {"$gte": start, "$lt": end}, "status": {"$in": FINISHED}},
            projection={
                "_id": False,
                "job": True,
                "status": True,
                "duration_ms": True,
                "error.type": True,
                "error.message": True,
            },
        )
        return [document async for document in cursor]

    async def delete_finished_before(self, *, cutoff: datetime) -> int:
        outcome = await self._runs.delete_many(
            {"status": {"$in": FINISHED}, "finished_at": {"$lt": cutoff}}
        )
        return outcome.deleted_count


def _oid(run_id: str) -> ObjectId:
    if not ObjectId.is_valid(run_id):
        raise UnknownRun(run_id)
    return ObjectId(run_id)


def _owned(run_id: str, instance: str) -> Document:
    return {"_id": _oid(run_id), "instance": instance, "status": RunStatus.RUNNING.value}


@dataclass(frozen=True)
class Claimed:
    run: JobRun
    """The run as this instance claimed it."""
    orphaned: JobRun | None = None
    """For a run whose owner's lease ran out: the run as that owner left it."""


class UnknownRun(Refused, LookupError):
    status_code = 404

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}")
        self.run_id = run_id


def _to_document(run: JobRun) -> Document:
    document = run.model_dump(mode="python", exclude={"id"})
    document["_id"] = ObjectId(run.id)
    return document


def run_of(document: Document) -> JobRun:
    return JobRun.model_validate({**document, "id": str(document["_id"])})
