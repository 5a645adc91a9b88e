"""Missed ticks: a cron binding's tick that no instance could store (the database away, or too
slow to answer) is kept in the job's TickCoordinator actor (the actor state store, Redis, which
the outage does not reach), and stored once the database answers again, as the job's
`catch_up` policy says (`CatchUp` in app/workers/registry.py).

The binding does not fire a tick again that the app answered with an error, so the app keeps
it. Every instance looks for kept ticks every few seconds; what it stores is deduplicated by
the tick (the same unique index as a live tick's run), and a tick is forgotten only once its
run is stored, so two instances catching up at once, or one dying halfway, make no second run
and lose nothing.
"""

import asyncio
from dataclasses import dataclass
from datetime import datetime

from loguru import logger

from app.actors.client import ActorUnavailable
from app.core.clock import utc_now
from app.dispatch.engine import EngineParts
from app.dispatch.intake import RunIntake
from app.models.runs import JobRun, RunError, RunStatus, RunTrigger
from app.repositories.pauses import PauseRepository
from app.workers.registry import CatchUp, Job

# How often an instance looks for kept ticks.
CATCH_UP_INTERVAL_SECONDS = 5.0
# With catch_up="all", the newest this many missed ticks get a run each.
MAX_CATCH_UP_RUNS = 100


@dataclass(frozen=True)
class CatchUpRun:
    """A run that stands for missed ticks: `tick` the newest of them."""

    tick: datetime
    missed: list[datetime]
    skipped: bool = False  # catch_up="none": recorded, not run

    @property
    def dedupe_key(self) -> str:
        """A live tick's key, so that a tick stored late by its own firing is not run twice."""
        return f"{'skipped' if self.skipped else 'cron'}:{self.tick.isoformat()}"


def plan_catch_up(policy: CatchUp, ticks: list[datetime]) -> list[CatchUpRun]:
    """The runs that stand for `ticks` (missed, in any order) under `policy`."""
    if not ticks:
        return []
    ordered = sorted(set(ticks))
    if policy == "all":
        return [CatchUpRun(tick=tick, missed=[tick]) for tick in ordered[-MAX_CATCH_UP_RUNS:]]
    return [CatchUpRun(tick=ordered[-1], missed=ordered, skipped=policy == "none")]


class MissedTicks:
    def __init__(self, *, parts: EngineParts, intake: RunIntake, pauses: PauseRepository) -> None:
        self._parts = parts
        self._intake = intake
        self._pauses = pauses
        self._stopping = asyncio.Event()

    async def keep(self, job: Job, tick: datetime, why: BaseException) -> None:
        """Keeps a tick this instance could not store; raises `ActorUnavailable` when it cannot
        be kept either (then it is lost, and the log says so)."""
        log = logger.bind(job=job.name, tick=tick.isoformat(), error=repr(why)[:300])
        try:
            kept = await self._parts.actors.keep_missed_tick(job=job.name, tick=tick)
        except ActorUnavailable:
            log.error("tick lost: the database is away and the tick coordinator too")
            raise
        log.bind(kept=kept).warning("tick kept: the database is away; stored once it is back")

    async def run(self) -> None:
        """Catches up every few seconds until `stop`."""
        while not self._stopping.is_set():
            for job in self._parts.registry:
                if job.binding is not None and job.schedule is not None:
                    await self._catch_up_quietly(job)
            try:
                await asyncio.wait_for(self._stopping.wait(), CATCH_UP_INTERVAL_SECONDS)
            except TimeoutError:
                continue

    def stop(self) -> None:
        self._stopping.set()

    async def _catch_up_quietly(self, job: Job) -> None:
        try:
            await self.catch_up(job)
        except Exception as exc:  # the database or the actor still away: next round
            logger.bind(job=job.name, error=repr(exc)[:300]).debug("catch-up not done yet")

    async def catch_up(self, job: Job) -> list[JobRun]:
        """Stores the runs for the job's kept ticks, then forgets them; the runs made here."""
        ticks = await self._parts.actors.missed_ticks(job=job.name)
        if not ticks:
            return []
        made: list[JobRun] = []
        if await self._pauses.skip_firing(job.name):
            logger.bind(job=job.name, ticks=len(ticks)).info(
                "missed ticks of a paused job: skipped"
            )
        else:
            for planned in plan_catch_up(job.catch_up, ticks):
                run = await self._store(job, planned)
                if run is not None:
                    made.append(run)
        await self._parts.actors.forget_missed_ticks(job=job.name, ticks=ticks)
        logger.bind(job=job.name, ticks=len(ticks), runs=len(made), policy=job.catch_up).warning(
            "missed ticks caught up"
        )
        return made

    async def _store(self, job: Job, planned: CatchUpRun) -> JobRun | None:
        trigger = RunTrigger(type="cron", tick=planned.tick, missed_ticks=planned.missed)
        if not planned.skipped:
            submission = await self._intake.submit(
                job,
                trigger,
                None,
                dedupe_key=planned.dedupe_key,
                refusal_reason="a missed tick caught up, though its run was stored after all",
            )
            return submission.run if submission.created else None
        now = utc_now()
        skip = JobRun.new(
            id=self._parts.runs.new_id(),
            job=job,
            trigger=trigger,
            at=now,
            payload=None,
            status=RunStatus.CANCELLED,
            finished_at=now,
            instance=self._parts.instance,
            error=RunError(
                type="MissedTicksSkipped",
                message=f"{len(planned.missed)} ticks missed while the database was away, "
                "skipped (catch_up='none')",
            ),
        )
        stored = await self._parts.runs.insert(skip, dedupe_key=planned.dedupe_key)
        return skip if stored else None
