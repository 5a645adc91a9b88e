"""Missed ticks: what the catch-up makes of them under each policy, and how the job's
TickCoordinator keeps them (its logic, on the SDK's mock actor; the real one is in the e2e
test of a database freeze, tests/e2e/test_missed_ticks.py)."""

from datetime import UTC, datetime, timedelta

import pytest
from dapr.actor.runtime.mock_actor import create_mock_actor

from app.actors.tick_coordinator import KEPT_TICKS, TickCoordinator
from app.dispatch.missed_ticks import MAX_CATCH_UP_RUNS, plan_catch_up
from app.workers.context import JobContext
from app.workers.registry import RegistrationError, Registry

START = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def ticks(n: int) -> list[datetime]:
    return [START + timedelta(seconds=s) for s in range(n)]


def test_latest_makes_one_run_for_the_window_naming_every_tick() -> None:
    missed = ticks(9)

    (run,) = plan_catch_up("latest", list(reversed(missed)))

    assert run.tick == missed[-1]
    assert run.missed == missed
    assert not run.skipped
    assert run.dedupe_key == f"cron:{missed[-1].isoformat()}", "a live tick's key"


def test_all_makes_a_run_per_tick_for_the_newest_hundred() -> None:
    missed = ticks(MAX_CATCH_UP_RUNS + 20)

    runs = plan_catch_up("all", missed + missed[:5])

    assert [r.tick for r in runs] == missed[-MAX_CATCH_UP_RUNS:]
    assert all(r.missed == [r.tick] for r in runs)
    assert len({r.dedupe_key for r in runs}) == MAX_CATCH_UP_RUNS


def test_none_records_one_skip_and_nothing_to_run() -> None:
    missed = ticks(4)

    (skip,) = plan_catch_up("none", missed)

    assert skip.skipped
    assert skip.missed == missed
    assert skip.dedupe_key.startswith("skipped:")
    assert plan_catch_up("latest", []) == []


async def test_the_coordinator_keeps_ticks_once_each_until_forgotten() -> None:
    coordinator = create_mock_actor(TickCoordinator, "report_job")
    for tick in [*ticks(3), ticks(1)[0]]:
        await coordinator.keep({"tick": tick.isoformat()})

    kept = (await coordinator.missed({}))["ticks"]
    left = await coordinator.forget({"ticks": kept[:2]})

    assert kept == [t.isoformat() for t in ticks(3)], "oldest first, each once"
    assert left == {"left": 1}
    assert (await coordinator.missed({}))["ticks"] == kept[2:]


async def test_the_coordinator_lets_the_oldest_go_past_its_limit() -> None:
    coordinator = create_mock_actor(TickCoordinator, "every_second")
    for tick in ticks(KEPT_TICKS):
        await coordinator.keep({"tick": tick.isoformat()})

    answer = await coordinator.keep({"tick": (START + timedelta(days=1)).isoformat()})
    kept = (await coordinator.missed({}))["ticks"]

    assert answer == {"kept": KEPT_TICKS}
    assert kept[0] == ticks(2)[1].isoformat()
    assert kept[-1] == (START + timedelta(days=1)).isoformat()


def test_an_unknown_catch_up_policy_is_refused_at_registration() -> None:
    registry = Registry()
    with pytest.raises(RegistrationError, match="catch_up='sometimes' is none of latest, all"):

        @registry.scheduled(cron="@every 1s", binding="b-cron", catch_up="sometimes")  # type: ignore[call-overload, untyped-decorator]
        async def tick(ctx: JobContext) -> None:
            return None
