"""Exactly-once effects of a transactional job, against the real MongoDB-wire server: a handler
that fails after its write leaves nothing; a run applied once is not applied again by a later
attempt, which gets the result of the one that applied it; two attempts of one run at once (one
taken over while it still ran) apply once, whichever of them commits; writes that are not the
run's own (another run's) are not held back."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId

from app.db.mongo import Database
from app.dispatch.transactions import APPLIED_RUNS, RunTransactions
from app.models.runs import JobRun, RunStatus, RunTrigger

TALLIES = "tallies"


def run_of(run_id: str, attempt: int = 1) -> JobRun:
    return JobRun(
        id=run_id,
        job="tally",
        kind="event",
        status=RunStatus.RUNNING,
        trigger=RunTrigger(type="event"),
        attempt=attempt,
        created_at=datetime.now(UTC),
    )


@pytest.fixture
async def transactions(db: Database) -> RunTransactions:
    ready = RunTransactions(db)
    await ready.ensure_ready(["tally"])
    return ready


def tally(
    db: Database,
    key: str,
    *,
    entered: asyncio.Event | None = None,
    release: asyncio.Event | None = None,
    fail: bool = False,
    calls: list[str] | None = None,
    name: str = "",
) -> Any:
    """A handler that is not idempotent (an `$inc`, with no session given: the bound one is
    used), waits for `release` after its write when given one, then fails or returns."""

    async def handler() -> dict[str, Any]:
        if calls is not None:
            calls.append(name)
        await db[TALLIES].update_one({"_id": key}, {"$inc": {"applied": 1}}, upsert=True)
        if entered is not None:
            entered.set()
        if release is not None:
            await release.wait()
        if fail:
            raise RuntimeError(f"{name} fails after its write")
        return {"by": name}

    return handler


async def applied(db: Database, key: str) -> int:
    document = await db[TALLIES].find_one({"_id": key})
    return 0 if document is None else int(document["applied"])


async def test_a_handler_that_fails_after_its_write_leaves_nothing(
    db: Database, transactions: RunTransactions
) -> None:
    run = run_of(str(ObjectId()))

    with pytest.raises(RuntimeError, match="fails after its write"):
        await transactions.apply(run, tally(db, "k", fail=True, name="a"))

    assert await applied(db, "k") == 0
    assert await db[APPLIED_RUNS].find_one({"_id": run.id}) is None


async def test_a_run_applied_once_is_not_applied_by_a_later_attempt(
    db: Database, transactions: RunTransactions
) -> None:
    run_id, calls = str(ObjectId()), list[str]()
    first = await transactions.apply(run_of(run_id), tally(db, "k", calls=calls, name="first"))
    again = await transactions.apply(
        run_of(run_id, attempt=2), tally(db, "k", calls=calls, name="second")
    )

    assert first == again == {"by": "first"}
    assert calls == ["first"], "the second attempt found the effects applied"
    assert await applied(db, "k") == 1
    marker = await db[APPLIED_RUNS].find_one({"_id": run_id})
    assert marker is not None
    assert marker["attempt"] == 1


async def test_an_attempt_taken_over_while_it_runs_and_its_successor_apply_once(
    db: Database, transactions: RunTransactions
) -> None:
    """The first attempt is still in its transaction (its lease ran out: another instance took
    the run) when the second starts: the second waits for it, then finds the effects applied."""
    run_id, calls = str(ObjectId()), list[str]()
    entered, release = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(
        transactions.apply(
            run_of(run_id),
            tally(db, "k", entered=entered, release=release, calls=calls, name="first"),
        )
    )
    await asyncio.wait_for(entered.wait(), 10)
    second = asyncio.create_task(
        transactions.apply(run_of(run_id, attempt=2), tally(db, "k", calls=calls, name="second"))
    )
    done, _ = await asyncio.wait({second}, timeout=1)
    assert not done, "the second attempt waits while the first holds the run"
    release.set()

    assert await first == {"by": "first"}
    assert await asyncio.wait_for(second, 30) == {"by": "first"}
    assert calls == ["first"]
    assert await applied(db, "k") == 1


async def test_when_the_taken_over_attempt_fails_its_successor_applies(
    db: Database, transactions: RunTransactions
) -> None:
    run_id, calls = str(ObjectId()), list[str]()
    entered, release = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(
        transactions.apply(
            run_of(run_id),
            tally(db, "k", entered=entered, release=release, fail=True, calls=calls, name="1st"),
        )
    )
    await asyncio.wait_for(entered.wait(), 10)
    second = asyncio.create_task(
        transactions.apply(run_of(run_id, attempt=2), tally(db, "k", calls=calls, name="2nd"))
    )
    release.set()

    with pytest.raises(RuntimeError):
        await first
    assert await asyncio.wait_for(second, 30) == {"by": "2nd"}
    assert calls[0] == "1st"
    assert calls[-1] == "2nd"
    assert await applied(db, "k") == 1


async def test_other_runs_are_not_held_back_by_one_in_its_transaction(
    db: Database, transactions: RunTransactions
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    held = asyncio.create_task(
        transactions.apply(
            run_of(str(ObjectId())), tally(db, "held", entered=entered, release=release)
        )
    )
    await asyncio.wait_for(entered.wait(), 10)

    other = await asyncio.wait_for(
        transactions.apply(run_of(str(ObjectId())), tally(db, "other", name="other")), 10
    )
    release.set()
    await held

    assert other == {"by": "other"}
    assert (await applied(db, "held"), await applied(db, "other")) == (1, 1)
