"""Flow control across instances, on the real stack: three instances, each run recording its
span (tests/flow_control_workers.py), the limits held by FlowGate actors.

- `max_running=2`: never more than two runs of the job at once across the three instances;
- `concurrency_key="tenant"`, one per key, 20 keys: never two runs of one tenant at once, while
  tenants run side by side;
- `rate_limit="20/15s"`, over a minute: no 15 s window holds more than 20 starts (within a
  second's tolerance for the time between the gate's grant and the handler's start), and the
  limit is used: 100 events, 20 per window, all run, the last within 8 s of its window;
- overlap policies with a 1 s cron job that takes 2.5 s: `skip` and `buffer_one` never run two
  at once, record the skipped ticks, and `buffer_one` never has more than one run waiting.
No event is lost: every event published has one succeeded run.
"""

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from app.db.mongo import Database
from tests.e2e.deployment import (
    Ports,
    RunningWorker,
    cron_binding,
    database_of,
    empty_streams,
    prepare_worker,
    started,
)
from tests.flow_control_workers import (
    CAPPED_MAX_RUNNING,
    CAPPED_TOPIC,
    OVERLAP_BINDINGS,
    RATE_COUNT,
    RATE_PERIOD_SECONDS,
    RATED_TOPIC,
    SPANS,
    TENANT_TOPIC,
    overlap_job,
)
from tests.support import eventually, unique_database

pytestmark = pytest.mark.e2e

FLOW_PORTS = Ports(app=18950, http=14450, grpc=15951, metrics=19950)
TOPICS = [CAPPED_TOPIC, TENANT_TOPIC, RATED_TOPIC]
# The time a granted run may take from its gate's grant to its handler's first line.
GRANT_TO_START = timedelta(seconds=1)
# The rate test's events fill this many windows of the rate; the last starts this soon after
# its window opens (the poller's interval, the held runs' retries, a busy machine).
WINDOWS = 5
USED_WITHIN = timedelta(seconds=8)


def binding_components(directory: Path, app_id: str) -> Path:
    for binding in OVERLAP_BINDINGS.values():
        cron_binding(directory, binding, "@every 1s", scope=app_id)
    return directory


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    tmp = tmp_path_factory.mktemp("limits")
    worker = prepare_worker(
        tmp,
        app_id="worker-limits",
        ports=FLOW_PORTS,
        database=unique_database("aevatar_flow"),
        instances=3,
        env={"Worker__Modules": '["tests.flow_control_workers"]'},
        resources=[binding_components(tmp / "components", "worker-limits")],
    )
    # The FlowGate and TickCoordinator actors of this deployment alone.
    worker.namespace = f"e2e-limits-{uuid.uuid4().hex[:8]}"
    try:
        with started(worker) as running:
            yield running
    finally:
        empty_streams(TOPICS)


@pytest.fixture(scope="module")
async def db(
    trio: RunningWorker, mongo: AsyncMongoClient[dict[str, Any]]
) -> AsyncIterator[Database]:
    async with database_of(trio, mongo) as db:
        yield db


async def publish_all(worker: RunningWorker, topic: str, items: list[dict[str, Any]]) -> None:
    """Publishes through the three sidecars in turn."""
    async with httpx.AsyncClient(timeout=10) as http:
        for n, item in enumerate(items):
            response = await http.post(
                f"{worker.sidecar_url_of(n % worker.instances)}/v1.0/publish/pubsub/{topic}",
                json=item,
            )
            assert response.status_code == 204, response.text


async def spans_of(db: Database, job: str) -> list[dict[str, Any]]:
    return [span async for span in db[SPANS].find({"job": job}).sort("start", 1)]


def most_at_once(spans: list[dict[str, Any]]) -> int:
    """The most spans open at one moment (an end and a start at the same instant do not meet)."""
    edges = sorted([(s["start"], 1) for s in spans] + [(s["end"], -1) for s in spans])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


async def every_event_ran_once(db: Database, job: str, keys: list[str]) -> None:
    async def done() -> bool:
        return await db[SPANS].count_documents({"job": job}) >= len(keys)

    await eventually(done, within=120, what=f"every event of {job} to run")
    runs = [run async for run in db["job_runs"].find({"job": job})]
    assert sorted(run["payload"]["key"] for run in runs) == sorted(keys)
    assert {run["status"] for run in runs} == {"succeeded"}
    assert sorted(span["key"] for span in await spans_of(db, job)) == sorted(keys)


async def test_max_running_holds_across_three_instances(trio: RunningWorker, db: Database) -> None:
    keys = [f"capped-{n}" for n in range(30)]
    await publish_all(trio, CAPPED_TOPIC, [{"key": key, "hold_ms": 300} for key in keys])

    await every_event_ran_once(db, "capped", keys)
    spans = await spans_of(db, "capped")
    assert most_at_once(spans) == CAPPED_MAX_RUNNING
    assert len({span["instance"] for span in spans}) > 1, "the runs spread over the instances"
    gated = await db["job_runs"].count_documents({"job": "capped", "gate": "capped"})
    assert gated == len(keys)


async def test_a_concurrency_key_limits_each_tenant_not_the_job(
    trio: RunningWorker, db: Database
) -> None:
    tenants = [f"tenant-{n}" for n in range(20)]
    items: list[dict[str, Any]] = [
        {"key": f"{tenant}-{round_}", "tenant": tenant, "hold_ms": 200}
        for round_ in range(3)
        for tenant in tenants
    ]
    await publish_all(trio, TENANT_TOPIC, items)

    await every_event_ran_once(db, "per_tenant", [item["key"] for item in items])
    spans = await spans_of(db, "per_tenant")
    for tenant in tenants:
        assert most_at_once([s for s in spans if s["tenant"] == tenant]) == 1, tenant
    assert most_at_once(spans) > 1, "different tenants run side by side"


async def test_a_rate_limit_is_respected_over_a_minute(trio: RunningWorker, db: Database) -> None:
    keys = [f"rated-{n}" for n in range(WINDOWS * RATE_COUNT)]
    await publish_all(trio, RATED_TOPIC, [{"key": key} for key in keys])

    await every_event_ran_once(db, "rated", keys)
    starts: list[datetime] = [span["start"] for span in await spans_of(db, "rated")]
    period = timedelta(seconds=RATE_PERIOD_SECONDS)
    for first in starts:
        window = [s for s in starts if first <= s < first + period - GRANT_TO_START]
        assert len(window) <= RATE_COUNT, f"{len(window)} starts in the window from {first}"
    # 20 per 15 s, 5 windows' worth: the last window opens 60 s after the first start. The
    # limit is used, not only respected: the last start comes within seconds of that.
    last_window_opens = (WINDOWS - 1) * period
    assert starts[-1] - starts[0] >= last_window_opens - GRANT_TO_START
    assert starts[-1] - starts[0] < last_window_opens + USED_WITHIN


async def test_overlap_policies_never_run_two_ticks_at_once(db: Database) -> None:
    """The two 1 s jobs have ticked since the deployment started; their history, watched for
    a while longer, says how each tick went."""
    buffer_job = overlap_job("buffer_one")
    waiting_seen: list[int] = []
    before = await db[SPANS].count_documents({"job": buffer_job})

    async def watched_long_enough() -> bool:
        waiting_seen.append(
            await db["job_runs"].count_documents({"job": buffer_job, "status": "pending"})
        )
        return await db[SPANS].count_documents({"job": buffer_job}) >= before + 3

    await eventually(watched_long_enough, within=60, what="three more runs of the buffered job")
    assert max(waiting_seen) <= 1, "buffer_one keeps one run waiting at most"
    assert 1 in waiting_seen, "a run of buffer_one waited for the one before it"
    for policy in OVERLAP_BINDINGS:
        job = overlap_job(policy)
        spans = await spans_of(db, job)
        assert len(spans) >= 2, job
        assert most_at_once(spans) == 1, job
        skipped = await db["job_runs"].find_one({"job": job, "error.type": "OverlapSkipped"})
        assert skipped is not None, job
        assert f"overlap='{policy}'" in skipped["error"]["message"]
        dead = await db["job_runs"].count_documents(
            {"job": job, "status": {"$in": ["dead", "failed"]}}
        )
        assert dead == 0, job
        skips = await db["job_runs"].count_documents({"job": job, "error.type": "OverlapSkipped"})
        print(f"\n[flow] overlap={policy}: {len(spans)} runs, {skips} ticks skipped")  # noqa: T201
