"""Attempts that died with their instance. A delivered event's first attempt runs before its
run is stored; when its process dies mid-attempt, the delivery journal it left
(app/dispatch/delivery_journal.py) names it, and the instance, started again, stores the run
with that attempt failed (`InstanceDied`), to be retried as its job says, or dead once its
attempts are spent: a poison message whose handler takes its process down does not take every
instance down in turn forever. A stored run whose instance died is taken over when its lease
runs out, its lost attempt kept (app/dispatch/lifecycle.py); one whose every attempt was lost
so goes dead the same way."""

from datetime import datetime, timedelta

from loguru import logger

from app.core.clock import utc_now
from app.dispatch.delivery_journal import JournalEntry
from app.dispatch.engine import EngineParts
from app.models.runs import Attempt, JobRun, RunError, RunStatus, RunTrigger
from app.workers.registry import Job

# An entry older than this is history, not a delivery that waits: its event was redelivered
# and ran elsewhere long ago (or its message is gone).
FORGET_AFTER = timedelta(hours=1)
LOST_ATTEMPTS = ("InstanceDied", "LeaseExpired")
"""The error types of an attempt whose instance was gone before it ended."""


def died_error() -> RunError:
    return RunError(
        type="InstanceDied",
        message="its instance died while the attempt ran (killed, out of memory, crashed or "
        "exited), before the run was stored",
    )


def poison_error(attempts: int) -> RunError:
    return RunError(
        type="PoisonMessage",
        message=f"each of its {attempts} attempts ended with its instance gone (it died, or was "
        "cut off from the database): not run again, so that an event whose handler takes its "
        "process down cannot take every instance down in turn",
    )


def every_attempt_lost(run: JobRun) -> bool:
    """Each of the run's attempts, all on record, ended with its instance gone."""
    return len(run.attempts) >= run.max_attempts and all(
        attempt.error is not None and attempt.error.type in LOST_ATTEMPTS
        for attempt in run.attempts
    )


async def record_died_attempts(entries: list[JournalEntry], parts: EngineParts) -> int:
    """Stores each journal entry's attempt as one that died; how many were stored."""
    stored = 0
    for entry in entries:
        job = parts.registry.get(entry.job)
        log = logger.bind(job=entry.job, run_id=entry.run_id, event_id=entry.event_id)
        if job is None or utc_now() - entry.begun > FORGET_AFTER:
            log.warning("delivery journal entry left (no such job here, or too old)")
            continue
        if await _stored_died(job, entry, parts):
            stored += 1
            log.warning("an attempt died with its instance: recorded")
    return stored


async def _stored_died(job: Job, entry: JournalEntry, parts: EngineParts) -> bool:
    now = utc_now()
    dedupe_key = f"event:{entry.event_id}"
    lost = Attempt(
        attempt=1,
        instance=entry.instance,
        started_at=entry.begun,
        finished_at=now,
        status=RunStatus.FAILED,
        error=died_error(),
    )
    run = _run_after(job, entry, lost, now)
    if await parts.runs.insert(run, dedupe_key=dedupe_key):
        return True
    # The occurrence has a run already: its redelivery ran (or died) elsewhere meanwhile.
    existing = await parts.runs.find_by_dedupe_key(job=job.name, dedupe_key=dedupe_key)
    if existing is None or existing.status not in (RunStatus.PENDING, RunStatus.FAILED):
        return False
    number = len(existing.attempts) + 1
    spent = job.retry.gives_up_after(number)
    return await parts.runs.add_died_attempt(
        run_id=existing.id,
        attempts_before=len(existing.attempts),
        attempt=lost.model_copy(update={"attempt": number}),
        dead_error=poison_error(number) if spent else None,
        next_attempt_at=now + timedelta(seconds=job.retry.delay_after(number)),
        now=now,
    )


def _run_after(job: Job, entry: JournalEntry, lost: Attempt, now: datetime) -> JobRun:
    """The run of the entry's event, as its died attempt leaves it."""
    spent = job.retry.gives_up_after(1)
    return JobRun.new(
        id=entry.run_id,
        job=job,
        trigger=RunTrigger(type="event", event_id=entry.event_id, topic=entry.topic),
        at=entry.begun,
        payload=entry.payload,
        status=RunStatus.DEAD if spent else RunStatus.FAILED,
        started_at=entry.begun,
        finished_at=now if spent else None,
        error=poison_error(1) if spent else lost.error,
        attempts=[lost],
        next_attempt_at=None if spent else now + timedelta(seconds=job.retry.delay_after(1)),
    )
