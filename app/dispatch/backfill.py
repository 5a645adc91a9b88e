"""Backfill: runs for a scheduled job's ticks in a range of time that have none (an outage
longer than the missed ticks kept, a job deployed late, a range an operator wants again).

A dry run lists the ticks and which of them have a run; a backfill makes a run for each tick
that has none, under the tick's own unique key, so a backfill asked twice, or one that meets a
live tick, makes no second run of a tick."""

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from app.dispatch.errors import DispatchError
from app.dispatch.intake import RunIntake
from app.models.runs import JobRun, RunTrigger
from app.repositories.runs import RunRepository
from app.workers.registry import Job

# The ticks one backfill may cover: an hour of a one-second cron, a year of a daily one.
MAX_BACKFILL_TICKS = 3_600


class BackfillRefused(DispatchError):
    status_code = 422


@dataclass(frozen=True)
class Backfill:
    job: str
    ticks: list[datetime]
    """The schedule's ticks in the range."""
    had_runs: list[datetime]
    """Those of them that had a run already."""
    made: list[JobRun] = field(default_factory=list)
    """The runs made (none in a dry run)."""

    @property
    def missing(self) -> list[datetime]:
        had = set(self.had_runs)
        return [tick for tick in self.ticks if tick not in had]


def _key(tick: datetime) -> str:
    return f"cron:{tick.isoformat()}"


async def backfill(
    job: Job,
    *,
    since: datetime,
    until: datetime,
    dry_run: bool,
    intake: RunIntake,
    runs: RunRepository,
) -> Backfill:
    if job.schedule is None:
        raise BackfillRefused(f"job {job.name!r} has no schedule: there are no ticks to backfill")
    if since.tzinfo is None or until.tzinfo is None:
        raise BackfillRefused("from and to need a time zone (2026-12-07T03:00:00Z)")
    if until < since:
        raise BackfillRefused(f"from ({since.isoformat()}) is after to ({until.isoformat()})")
    ticks = job.schedule.ticks_between(since, until, most=MAX_BACKFILL_TICKS)
    if len(ticks) > MAX_BACKFILL_TICKS:
        raise BackfillRefused(
            f"the range holds more than {MAX_BACKFILL_TICKS} ticks of {job.schedule.expression!r}:"
            " backfill it in parts"
        )
    # Concurrent lookups go to the server together, as one `$in` per few hundred ticks.
    found = await asyncio.gather(
        *(runs.has_occurrence(job=job.name, dedupe_key=_key(tick)) for tick in ticks)
    )
    done = Backfill(job.name, ticks, [tick for tick, had in zip(ticks, found, strict=True) if had])
    if dry_run:
        return done
    for tick in done.missing:
        submission = await intake.submit(
            job,
            RunTrigger(type="cron", tick=tick, backfilled=True),
            None,
            dedupe_key=_key(tick),
            refusal_reason="backfilled, though the tick had a run by then",
        )
        if submission.created and submission.run is not None:
            done.made.append(submission.run)
    return done
