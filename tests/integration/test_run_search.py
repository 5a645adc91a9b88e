"""The run history's search against the real database: each filter, time ranges as `_id`
bounds, free text over payload, result and error, and pages cut by the scan budget."""

from datetime import timedelta
from typing import Any

import pytest
from bson import ObjectId

from app.core.clock import utc_now
from app.db.mongo import Database
from app.models.run_query import RunQuery
from app.models.runs import JobRun, RunError, RunStatus, RunTrigger
from app.repositories.newest_first import id_at
from app.repositories.run_history import RunHistory
from app.repositories.runs import RunRepository


def a_run(repo: RunRepository, job: str, status: RunStatus, **fields: Any) -> JobRun:
    return JobRun(
        id=repo.new_id(),
        job=job,
        kind=fields.pop("kind", "scheduled"),
        status=status,
        trigger=fields.pop("trigger", RunTrigger(type="manual")),
        created_at=utc_now(),
        **fields,
    )


@pytest.fixture
async def runs(db: Database) -> RunRepository:
    repo = RunRepository(db)
    await repo.ensure_indexes()
    return repo


@pytest.fixture
def history(db: Database) -> RunHistory:
    return RunHistory(db)


async def store(repo: RunRepository, *runs: JobRun) -> list[JobRun]:
    for run in runs:
        assert await repo.insert(run)
    return list(runs)


async def test_each_filter_narrows_the_history(runs: RunRepository, history: RunHistory) -> None:
    report = await store(
        runs,
        a_run(runs, "report", RunStatus.SUCCEEDED, payload={"region": "north"}),
        a_run(runs, "report", RunStatus.DEAD, error=RunError(type="KeyError", message="'south'")),
    )
    event = await store(
        runs,
        a_run(
            runs,
            "orders",
            RunStatus.SUCCEEDED,
            kind="event",
            trigger=RunTrigger(type="event", event_id="e-1", topic="orders"),
            result={"order": "NORTH-7"},
        ),
    )

    async def ids(kind_jobs: list[str] | None = None, **filters: Any) -> list[str]:
        page = await history.search(RunQuery(**filters), kind_jobs=kind_jobs)
        return [run.id for run in page.runs]

    newest_first = [event[0].id, report[1].id, report[0].id]
    assert await ids() == newest_first
    assert await ids(job="report") == [report[1].id, report[0].id]
    assert await ids(status="dead") == [report[1].id]
    assert await ids(kind="event", kind_jobs=["orders"]) == [event[0].id]
    assert await ids(trigger="event") == [event[0].id]
    assert await ids(text="north") == [event[0].id, report[0].id]  # payload and result, any case
    assert await ids(text="SOUTH") == [report[1].id]  # the error
    assert await ids(text="north", job="report") == [report[0].id]
    assert await ids(text="nowhere") == []


async def test_a_time_range_and_pages_follow_the_runs_creation(
    runs: RunRepository, history: RunHistory
) -> None:
    stored = await store(runs, *(a_run(runs, "tick", RunStatus.SUCCEEDED) for _ in range(5)))
    newest = [run.id for run in reversed(stored)]
    first = await history.search(RunQuery(limit=2))
    assert [run.id for run in first.runs] == newest[:2]
    second = await history.search(RunQuery(limit=2, before=first.next))
    assert [run.id for run in second.runs] == newest[2:4]

    now = utc_now()
    assert len((await history.search(RunQuery(since=now - timedelta(minutes=1)))).runs) == 5
    assert (await history.search(RunQuery(until=now - timedelta(minutes=1)))).runs == []
    assert (await history.search(RunQuery(since=now + timedelta(minutes=1)))).runs == []


async def test_a_page_cut_by_the_scan_budget_goes_on_where_it_stopped(
    runs: RunRepository, history: RunHistory
) -> None:
    stored = await store(
        runs,
        *(
            a_run(
                runs,
                "sync",
                RunStatus.SUCCEEDED,
                payload={"n": n, "tag": "red" if n % 3 else "blue"},
            )
            for n in range(12)
        ),
    )
    blue = {run.id for run in stored if run.payload["tag"] == "blue"}
    found: list[str] = []
    query = RunQuery(text="blue", limit=10)
    pages = 0
    while True:
        page = await history.search(query, budget=4)
        pages += 1
        assert page.scanned <= 4
        found += [run.id for run in page.runs]
        if page.next is None:
            break
        query = query.model_copy(update={"before": page.next})
    assert pages >= 3
    assert sorted(found) == sorted(blue)
    assert len(found) == len(set(found))


async def test_pages_over_a_history_spread_over_months_hold_each_run_once_in_order(
    runs: RunRepository, history: RunHistory
) -> None:
    now = utc_now()
    ages = [timedelta(seconds=s) for s in (0, 1, 3, 9, 40, 200, 3_000, 20_000, 90_000)]
    ages += [timedelta(days=d) for d in (3, 20, 90, 300)]
    stored = []
    for n, age in enumerate(ages):
        created = now - age
        run = a_run(runs, "spread", RunStatus.DEAD if n % 4 == 0 else RunStatus.SUCCEEDED)
        run = run.model_copy(
            update={
                "id": str(ObjectId(id_at(created).binary[:4] + n.to_bytes(8))),
                "created_at": created,
            }
        )
        stored.append(run)
    await store(runs, *stored)
    newest = [run.id for run in sorted(stored, key=lambda r: r.id, reverse=True)]

    by_id = {run.id: run for run in stored}
    dead_newest = [run_id for run_id in newest if by_id[run_id].status is RunStatus.DEAD]
    for size, filters, expected in [
        *((size, {}, newest) for size in (1, 2, 5, 50)),
        *((size, {"status": "dead", "job": "spread"}, dead_newest) for size in (1, 2, 50)),
        (1, {"status": "succeeded", "job": "spread"}, [i for i in newest if i not in dead_newest]),
    ]:
        seen: list[str] = []
        query = RunQuery(limit=size, **filters)
        while True:
            page = await history.search(query)
            seen += [run.id for run in page.runs]
            if page.next is None:
                break
            query = query.model_copy(update={"before": page.next})
        assert seen == expected, f"pages of {size} with {filters}"
    latest = await history.latest(job="spread")
    assert latest is not None
    assert latest.id == newest[0]
