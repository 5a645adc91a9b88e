"""Ticks missed while the database is away, on the real stack: three one-second cron jobs, one
per `catch_up` policy, through a 10 s database freeze (SIGSTOP) and then a 10 s database stop.
The binding does not fire again a tick the app answered with an error; the app keeps each such
tick in the job's TickCoordinator actor and, once the database answers, stores: one run naming
the missed window (`latest`), one run per missed tick (`all`), or a skip (`none`). No tick of
any job has two runs."""

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from app.core.clock import utc_now
from app.db.mongo import Database
from tests.e2e.deployment import (
    Ports,
    RunningWorker,
    cron_binding,
    database_of,
    prepare_worker,
    started,
)
from tests.e2e.faults import restart_stack_service, signal_stack_service
from tests.missed_tick_workers import BINDINGS, job_of
from tests.support import eventually, unique_database

pytestmark = pytest.mark.e2e

MISSED_PORTS = Ports(app=18900, http=14400, grpc=15901, metrics=19990)
OUTAGE_SECONDS = 10
# A tick fired just before the database came back may be kept too (its wait ran out first).
CATCH_UP_SLACK_SECONDS = 6


def binding_components(directory: Path, app_id: str) -> Path:
    for binding in BINDINGS.values():
        cron_binding(directory, binding, "@every 1s", scope=app_id)
    return directory


@pytest.fixture(scope="module")
def ticking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    tmp = tmp_path_factory.mktemp("missed")
    worker = prepare_worker(
        tmp,
        app_id="worker-missed",
        ports=MISSED_PORTS,
        database=unique_database("aevatar_missed"),
        env={"Worker__Modules": '["tests.missed_tick_workers"]'},
        resources=[binding_components(tmp / "components", "worker-missed")],
    )
    # The TickCoordinator actors (and the ticks they keep) of this deployment alone.
    worker.namespace = f"e2e-missed-{uuid.uuid4().hex[:8]}"
    with started(worker) as running:
        yield running


@pytest.fixture(scope="module")
async def db(
    ticking: RunningWorker, mongo: AsyncMongoClient[dict[str, Any]]
) -> AsyncIterator[Database]:
    async with database_of(ticking, mongo) as db:
        yield db


async def runs_of(db: Database, job: str) -> list[dict[str, Any]]:
    return [run async for run in db["job_runs"].find({"job": job}).sort("trigger.tick", 1)]


async def all_runs(db: Database) -> dict[str, list[dict[str, Any]]]:
    return {policy: await runs_of(db, job_of(policy)) for policy in BINDINGS}


async def caught_up(db: Database, began: datetime, ended: datetime) -> tuple[int, int]:
    """Polls until the runs of the outage `began`..`ended` are as `check_outage` wants them
    (the instance catches up every few seconds, in as many rounds as the ticks come in), then
    checks once more, so that a timeout fails on the assertion that did not hold."""

    async def check() -> tuple[int, int]:
        missed = check_outage(await all_runs(db), began, ended)
        return missed, check_firings(await schedule_runs(db), began, ended)

    async def probe() -> tuple[int, int] | None:
        try:
            return await check()
        except (AssertionError, ValueError):
            return None

    with contextlib.suppress(AssertionError):
        await eventually(probe, within=90, interval=1, what="the missed ticks caught up")
    return await check()


SCHEDULE = "missed-firings"
"""A Jobs API schedule of the catch_up="all" job, every second: its firings are kept too."""


async def schedule_runs(db: Database) -> list[dict[str, Any]]:
    return (
        await db["job_runs"].find({"trigger.schedule": SCHEDULE}).sort("trigger.tick", 1).to_list()
    )


def check_firings(runs: list[dict[str, Any]], began: datetime, ended: datetime) -> int:
    """The schedule's firings that came in the outage and were kept have their run, caught up
    (Dapr's scheduler sends a schedule's next firing only once the app has answered the one
    before, so an outage gets few firings, not one a second); no occurrence has two runs. The
    occurrences caught up."""
    kept = [
        r
        for r in runs
        if r["trigger"].get("missed_ticks")
        and began <= r["trigger"]["tick"] <= ended + timedelta(seconds=CATCH_UP_SLACK_SECONDS)
    ]
    assert kept, "a firing of the outage was kept and caught up"
    assert all(r["job"] == job_of("all") and r["status"] == "succeeded" for r in kept), kept
    occurrences = [r["trigger"]["tick"] for r in runs]
    assert len(occurrences) == len(set(occurrences)), "no occurrence has two runs"
    return sum(len(r["trigger"]["missed_ticks"]) for r in kept)


def ticks(runs: list[dict[str, Any]]) -> list[datetime]:
    return [run["trigger"]["tick"] for run in runs]


def check_outage(runs: dict[str, list[dict[str, Any]]], began: datetime, ended: datetime) -> int:
    """Asserts what each policy made of the outage `began`..`ended`; the ticks missed. A tick
    fired in the outage's last seconds may still be stored late by its own firing, once the
    database answers: it is not missed then."""

    def of_outage(tick: datetime) -> bool:
        return began <= tick <= ended + timedelta(seconds=CATCH_UP_SLACK_SECONDS)

    def catching_up(found: list[dict[str, Any]]) -> dict[str, Any]:
        (run,) = [
            r for r in found if r["trigger"].get("missed_ticks") and of_outage(r["trigger"]["tick"])
        ]
        return run

    def live(found: list[dict[str, Any]]) -> set[datetime]:
        return {r["trigger"]["tick"] for r in found if not r["trigger"].get("missed_ticks")}

    latest = catching_up(runs["latest"])
    missed = latest["trigger"]["missed_ticks"]
    assert len(missed) >= 3, latest["trigger"]
    assert latest["status"] == "succeeded", latest["error"]
    assert not live(runs["latest"]) & set(missed), "one run for the window, none for its ticks"

    first = (began + timedelta(seconds=2)).replace(microsecond=0)
    seconds = int((ended - first).total_seconds())
    expected = {first + timedelta(seconds=s) for s in range(seconds)}
    every = {t.replace(microsecond=0) for t in ticks(runs["all"])}
    assert expected <= every, f"a run for each tick: missing {sorted(expected - every)}"

    skipped = catching_up(runs["none"])
    assert skipped["status"] == "cancelled"
    assert skipped["error"]["type"] == "MissedTicksSkipped"
    assert not live(runs["none"]) & set(skipped["trigger"]["missed_ticks"]), "skipped, not run"
    return len(missed)


async def test_ticks_missed_while_the_database_is_away_are_stored_by_each_policy(
    ticking: RunningWorker, db: Database
) -> None:
    async def ticking_live() -> bool:
        return all([await runs_of(db, job_of(p)) for p in BINDINGS])

    await eventually(ticking_live, within=60, what="live ticks of each job")
    async with ticking.api() as api:
        created = await api.put(
            f"/api/schedules/{SCHEDULE}", json={"job": job_of("all"), "cron": "@every 1s"}
        )
    assert created.status_code in (200, 201), created.text
    await eventually(lambda: schedule_runs(db), within=30, what="the schedule's first firings")

    frozen = utc_now()
    signal_stack_service("secantusdb", signal.SIGSTOP)
    try:
        await asyncio.sleep(OUTAGE_SECONDS)  # the fault's duration
    finally:
        signal_stack_service("secantusdb", signal.SIGCONT)
    missed_frozen = await caught_up(db, frozen, utc_now())

    stopped = utc_now()
    await asyncio.to_thread(restart_stack_service, "secantusdb", down_for=OUTAGE_SECONDS)
    missed_stopped = await caught_up(db, stopped, utc_now())

    runs = await all_runs(db)
    for policy, found in runs.items():
        all_ticks = ticks(found)
        assert len(all_ticks) == len(set(all_ticks)), f"{policy}: no tick has two runs"
        # A tick's run claimed and never started (an insert cancelled halfway, landing later)
        # would be taken for an orphan whose one attempt is spent: dead.
        assert {r["status"] for r in found} <= {"succeeded", "cancelled"}, policy
    print(  # noqa: T201
        f"\n[missed ticks] freeze: {missed_frozen} (ticks missed, Jobs API firings caught up); "
        f"stop: {missed_stopped}; runs: " + ", ".join(f"{p} {len(r)}" for p, r in runs.items())
    )
