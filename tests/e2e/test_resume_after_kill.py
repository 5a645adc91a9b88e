"""A data processor whose worker process is killed with SIGKILL resumes from its checkpoint when
the worker comes back, and applies no chunk twice."""

import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from app.db.mongo import Database
from tests.e2e.customers import progress_reaching, seed_customers
from tests.e2e.deployment import SPARE_PORTS, RunningWorker, database_of, prepare_worker
from tests.support import run_reaching, trigger, unique_database

pytestmark = pytest.mark.e2e

CUSTOMERS = 800


@pytest.fixture
async def killable(
    tmp_path_factory: pytest.TempPathFactory, mongo: AsyncMongoClient[dict[str, Any]]
) -> AsyncIterator[tuple[RunningWorker, Database]]:
    # An app id of its own: it gets no cron ticks and shares no subscriptions with `worker`.
    running = prepare_worker(
        tmp_path_factory.mktemp("kill"),
        app_id="worker-kill",
        ports=SPARE_PORTS,
        database=unique_database("aevatar_kill"),
        env={},
    )
    try:
        async with database_of(running, mongo) as db:
            yield running, db
    finally:
        running.stop()


async def test_a_killed_data_processor_resumes_from_its_checkpoint(
    killable: tuple[RunningWorker, Database],
) -> None:
    worker, db = killable
    await seed_customers(db, CUSTOMERS)
    worker.start()
    async with worker.api() as api:
        run_id = await trigger(
            api, "recompute_customer_summaries", {"chunk_size": 25, "pause_ms": 100}
        )

        before_kill = await progress_reaching(api, run_id, CUSTOMERS // 3)
    worker.stop(signal.SIGKILL)
    killed_instance = before_kill["instance"]

    worker.start()
    async with worker.api() as api:
        run = await run_reaching(api, run_id, {"succeeded", "dead"}, within=60)

    assert run["status"] == "succeeded", run["error"]
    assert run["attempt"] == 2
    assert run["instance"] != killed_instance
    lost, resumed = run["attempts"]
    assert (lost["instance"], lost["status"]) == (killed_instance, "failed")
    assert lost["error"]["type"] == "LeaseExpired"
    assert (resumed["instance"], resumed["status"]) == (run["instance"], "succeeded")
    assert run["progress"] == {"done": CUSTOMERS, "total": CUSTOMERS}
    assert run["result"]["written"] == CUSTOMERS
    applications = await db["customer_summaries"].distinct("applications")
    assert applications == [1], "no chunk was applied twice"
    assert await db["customer_summaries"].count_documents({}) == CUSTOMERS
    logs = [
        line for line in worker.app_log_lines() if line.get("message") == "resuming from checkpoint"
    ]
    assert logs, "the second instance resumed from the checkpoint, not from the start"
    assert logs[0]["checkpoint"]
