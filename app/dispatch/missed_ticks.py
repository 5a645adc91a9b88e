"""Missed ticks: a cron binding's tick that no instance could store (the database away, or too
slow to answer) is kept in the job's TickCoordinator actor (the actor state store, Redis, which
the outage does not reach), and stored once the database answers again, as the job's
`catch_up` policy says (`CatchUp` in app/workers/registry.py). A Jobs API schedule's firing is
kept the same way (the scheduler gives up on a firing the app failed after a few retries), in one
coordinator for all schedules, and stored under the occurrence it belongs to.

The binding does not fire a tick again that the app answered with an error, so the app keeps
it. Every instance looks for kept ticks every few seconds; what it stores is deduplicated by
the tick (the same unique index as a live tick's run), and a tick is forgotten only once its
run is stored, so two instances catching up at once, or one dying halfway, make no second run
and lose nothing.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from loguru import logger

from app.actors.client import ActorUnavailable
from app.dispatch.engine import EngineParts
from app.dispatch.intake import RunIntake
from app.models.runs import JobRun, RunError, RunTrigger
from app.repositories.pauses import PauseRepository
from app.repositories.schedules import ScheduleRepository
from app.workers.registry import CatchUp, Job

# How often an instance looks for kept ticks.
CATCH_UP_INTERVAL_SECONDS = 5.0
# With catch_up="all", the newest this many missed ticks get a run each.
MAX_CATCH_UP_RUNS = 100
# The tick coordinator that keeps the Jobs API firings no instance could store.
FIRINGS_KEY = "(jobs-api firings)"


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


@dataclass(frozen=True)
class Firing:
    """A Jobs API schedule's firing kept: its occurrence is worked out once the schedule's
    record can be read again."""

    schedule: str
    fired_at: datetime
    data: Any

    def entry(self) -> str:
        return json.dumps(
            {"schedule": self.schedule, "fired_at": self.fired_at.isoformat(), "data": self.data},
            sort_keys=True,
        )

    @classmethod
    def of(cls, entry: str) -> "Firing":
        kept = json.loads(entry)
        return cls(kept["schedule"], datetime.fromisoformat(kept["fired_at"]), kept["data"])


class MissedTicks:
    def __init__(
        self,
        *,
        parts: EngineParts,
        intake: RunIntake,
        pauses: PauseRepository,
        schedules: ScheduleRepository,
    ) -> None:
        self._parts = parts
        self._intake = intake
        self._pauses = pauses
        self._schedules = schedules
        self._stopping = asyncio.Event()

    async def keep(self, job: Job, tick: datetime, why: BaseException) -> None:
        """Keeps a tick this instance could not store; raises `ActorUnavailable` when it cannot
        be kept either (then it is lost, and the log says so)."""
        log = logger.bind(job=job.name, tick=tick.isoformat(), error=repr(why)[:300])
        await self._keep(job.name, tick.isoformat(), log)

    async def keep_firing(self, firing: Firing, why: BaseException) -> None:
        """Keeps a Jobs API firing this instance could not store, as `keep` does a tick."""
        log = logger.bind(schedule=firing.schedule, error=repr(why)[:300])
        await self._keep(FIRINGS_KEY, firing.entry(), log)

    async def _keep(self, key: str, entry: str, log: Any) -> None:
        try:
            kept = await self._parts.actors.keep_missed(key=key, entry=entry)
        except ActorUnavailable:
            log.error("firing lost: the database is away and the tick coordinator too")
            raise
        log.bind(kept=kept).warning("firing kept: the database is away; stored once it is back")

    async def run(self) -> None:
        """Catches up every few seconds until `stop`."""
        while not self._stopping.is_set():
            for job in self._parts.registry:
                if job.binding is not None and job.schedule is not None:
                    await self._quietly(self.catch_up(job), job.name)
            await self._quietly(self.catch_up_firings(), FIRINGS_KEY)
            try:
                await asyncio.wait_for(self._stopping.wait(), CATCH_UP_INTERVAL_SECONDS)
            except TimeoutError:
                continue

    def stop(self) -> None:
        self._stopping.set()

    async def _quietly(self, catching_up: Awaitable[list[JobRun]], key: str) -> None:
        try:
            await catching_up
        except Exception as exc:  # the database or the actor still away: next round
            logger.bind(key=key, error=repr(exc)[:300]).debug("catch-up not done yet")

    async def catch_up(self, job: Job) -> list[JobRun]:
        """Stores the runs for the job's kept ticks, then forgets them; the runs made here."""
        entries = await self._parts.actors.missed(key=job.name)
        if not entries:
            return []
        ticks = [datetime.fromisoformat(entry) for entry in entries]
        made = await self._catch_up(job, ticks, self._tick_run)
        await self._parts.actors.forget_missed(key=job.name, entries=entries)
        return made

    async def catch_up_firings(self) -> list[JobRun]:
        """Stores the runs for the Jobs API firings kept, by schedule, then forgets them."""
        entries = await self._parts.actors.missed(key=FIRINGS_KEY)
        by_schedule: dict[str, list[Firing]] = {}
        for entry in entries:
            firing = Firing.of(entry)
            by_schedule.setdefault(firing.schedule, []).append(firing)
        made: list[JobRun] = []
        for name, firings in by_schedule.items():
            stored = await self._schedules.get(name)
            named = firings[-1].data.get("job") if isinstance(firings[-1].data, dict) else None
            job = self._parts.registry.get(named or (stored.job if stored else ""))
            if stored is None or job is None or stored.paused:
                why = "deleted" if stored is None else "paused" if stored.paused else "no job"
                logger.bind(schedule=name, firings=len(firings)).warning(
                    f"missed firings of a schedule {why}: skipped"
                )
                continue
            data = firings[-1].data
            payload = data.get("payload") if isinstance(data, dict) else None
            occurrences = [stored.occurrence_of(firing.fired_at) for firing in firings]
            fire = partial(self._firing_run, name, payload)
            made += await self._catch_up(job, occurrences, fire, schedule=name)
        if entries:
            await self._parts.actors.forget_missed(key=FIRINGS_KEY, entries=entries)
        return made

    async def _catch_up(
        self,
        job: Job,
        ticks: list[datetime],
        run: Callable[[Job, CatchUpRun], Awaitable[JobRun | None]],
        *,
        schedule: str | None = None,
    ) -> list[JobRun]:
        """`schedule`: the Jobs API schedule the ticks are occurrences of (its pause was
        checked), None for a job's cron binding."""
        made: list[JobRun] = []
        if schedule is None and await self._pauses.skip_firing(job.name):
            logger.bind(job=job.name, ticks=len(ticks)).info("missed ticks of a paused job skipped")
        else:
            for planned in plan_catch_up(job.catch_up, ticks):
                stored = await (
                    self._skip(job, planned, schedule) if planned.skipped else run(job, planned)
                )
                if stored is not None:
                    made.append(stored)
        logger.bind(job=job.name, ticks=len(ticks), runs=len(made), policy=job.catch_up).warning(
            "missed ticks caught up"
        )
        return made

    async def _tick_run(self, job: Job, planned: CatchUpRun) -> JobRun | None:
        submission = await self._intake.submit(
            job,
            RunTrigger(type="cron", tick=planned.tick, missed_ticks=planned.missed),
            None,
            dedupe_key=planned.dedupe_key,
            refusal_reason="a missed tick caught up, though its run was stored after all",
        )
        return submission.run if submission.created else None

    async def _firing_run(
        self, schedule: str, payload: Any, job: Job, planned: CatchUpRun
    ) -> JobRun | None:
        submission = await self._intake.fire_schedule(
            job, schedule, payload, occurrence=planned.tick, missed=planned.missed
        )
        return submission.run if submission.created else None

    async def _skip(self, job: Job, planned: CatchUpRun, schedule: str | None) -> JobRun | None:
        """catch_up="none": the window recorded as one cancelled run, run by nobody."""
        trigger = RunTrigger(
            type="cron" if schedule is None else "schedule",
            schedule=schedule,
            tick=planned.tick,
            missed_ticks=planned.missed,
        )
        skip = JobRun.skipped(
            id=self._parts.runs.new_id(),
            job=job,
            trigger=trigger,
            payload=None,
            instance=self._parts.instance,
            error=RunError(
                type="MissedTicksSkipped",
                message=f"{len(planned.missed)} ticks missed while the database was away, "
                "skipped (catch_up='none')",
            ),
        )
        key = planned.dedupe_key if schedule is None else f"{planned.dedupe_key}:{schedule}"
        stored = await self._parts.runs.insert(skip, dedupe_key=key)
        return skip if stored else None
