"""Three instances of one app id, each with its own daprd, sharing placement, scheduler, Redis
and the MongoDB-wire server: no duplicate work, nothing lost.

The tests run in file order on one cluster: the last two stop an instance each.
"""

import asyncio
import collections
import itertools
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from app.db.mongo import Database, Document
from app.workers.builtin.message_queue import TOPIC as WORK_QUEUE
from stack.scale import pubsub_of_environment
from tests.e2e.customers import progress_reaching, seed_customers
from tests.e2e.deployment import CLUSTER_PORTS, RunningWorker, database_of, running_cluster
from tests.support import eventually, run_reaching, trigger, unique_database
from tests.workers import KEYED_TOPIC, ORDERED_TOPIC, TALLY_CHUNKS, WORKFLOW_PIECES

pytestmark = pytest.mark.e2e

INSTANCES = 3
EVENTS = 5_000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    with running_cluster(
        tmp_path_factory.mktemp("cluster"),
        app_id="worker-scale",
        ports=CLUSTER_PORTS,
        database=unique_database("aevatar_scale"),
        instances=INSTANCES,
    ) as running:
        yield running


@pytest.fixture(scope="module")
async def db(
    cluster: RunningWorker, mongo: AsyncMongoClient[dict[str, Any]]
) -> AsyncIterator[Database]:
    async with database_of(cluster, mongo) as db:
        yield db


async def test_a_cron_tick_every_second_makes_exactly_one_run_per_tick(db: Database) -> None:
    async def a_minute_of_ticks() -> list[Document] | None:
        runs = await db["job_runs"].find({"job": "scale_tick"}).to_list()
        return runs if len({run["trigger"]["tick"] for run in runs}) >= 62 else None

    runs = await eventually(a_minute_of_ticks, within=120, what="a minute of ticks")

    per_tick = collections.Counter(run["trigger"]["tick"] for run in runs)
    assert max(per_tick.values()) == 1, "a tick ran twice"
    # The first tick may predate the last instance's start: look at the minute after it.
    ticks = sorted(per_tick)[1:61]
    gaps = {later - earlier for earlier, later in itertools.pairwise(ticks)}
    assert gaps == {timedelta(seconds=1)}, f"ticks missing: {sorted(gaps)}"
    assert {run["status"] for run in runs} <= {"succeeded", "running"}


async def test_five_thousand_events_are_each_applied_once_across_the_instances(
    cluster: RunningWorker, db: Database
) -> None:
    batch = uuid.uuid4().hex[:8]
    ids = [f"{batch}-{n:05d}" for n in range(EVENTS)]
    async with httpx.AsyncClient(timeout=30) as http:
        for start in range(0, EVENTS, 250):
            entries = [
                {
                    "entryId": item_id,
                    "event": {"item_id": item_id},
                    "contentType": "application/json",
                }
                for item_id in ids[start : start + 250]
            ]
            sidecar = cluster.sidecar_url_of(start // 250 % INSTANCES)
            response = await http.post(
                f"{sidecar}/v1.0-alpha1/publish/bulk/pubsub/{WORK_QUEUE}", json=entries
            )
            assert response.status_code == 204, response.text

    async def all_applied() -> bool:
        return await db["work_items"].count_documents({"_id": {"$regex": f"^{batch}-"}}) == EVENTS

    await eventually(all_applied, within=600, interval=2, what=f"{EVENTS} work items applied")
    times = await db["work_items"].distinct("times_processed", {"_id": {"$regex": f"^{batch}-"}})
    assert times == [1], "an event was applied twice"
    runs = await db["job_runs"].aggregate(
        [
            {
                "$match": {
                    "job": "MessageQueueProcessor",
                    "payload.item_id": {"$regex": f"^{batch}-"},
                }
            },
            {"$group": {"_id": "$instance", "runs": {"$sum": 1}}},
        ]
    )
    per_instance = {row["_id"]: row["runs"] async for row in runs}
    assert sum(per_instance.values()) == EVENTS, "one run per event"
    assert len(per_instance) == INSTANCES, f"the work was not spread: {per_instance}"


async def test_the_events_of_one_key_run_one_at_a_time_across_instances(
    cluster: RunningWorker, db: Database
) -> None:
    accounts = [f"acct-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    async with httpx.AsyncClient() as http:
        await asyncio.gather(
            *(
                http.post(
                    f"{cluster.sidecar_url_of(seq % INSTANCES)}/v1.0/publish/pubsub/"
                    + ORDERED_TOPIC,
                    json={"account": account, "seq": seq, "sleep_ms": 100},
                )
                for account in accounts
                for seq in range(12)
            )
        )

    async def all_entries() -> list[Document] | None:
        ledgers = await db["test_ledgers"].find({"_id": {"$in": accounts}}).to_list()
        done = [ledger for ledger in ledgers if len(ledger.get("entries", [])) == 12]
        return ledgers if len(done) == len(accounts) else None

    ledgers = await eventually(all_entries, within=120, what="every ledger entry")
    for ledger in ledgers:
        assert ledger["most_in_flight"] == 1, f"{ledger['_id']}: two entries at once"
        assert sorted(ledger["entries"]) == list(range(12))


@pytest.mark.skipif(
    pubsub_of_environment() != "kafka",
    reason="Redis streams deliver up to `concurrency` messages at once, in no order",
)
@pytest.mark.parametrize(
    ("topic", "ledgers"),
    [(ORDERED_TOPIC, "test_ledgers"), (KEYED_TOPIC, "test_keyed_ledgers")],
    ids=["ordered_by, with the key sequencer", "no ordered_by, no sequencer"],
)
async def test_on_kafka_a_keys_events_published_with_it_as_partition_key_run_in_publish_order(
    cluster: RunningWorker, db: Database, topic: str, ledgers: str
) -> None:
    """One key's events, sent one after the other with the key as Kafka's partition key, stay
    in one partition, which daprd delivers in order, one at a time: they run in that order
    (Redis promises one at a time, not the order: the test above), with the key sequencer and,
    for events whose first attempt succeeds, without it."""
    accounts = [f"kafka-{uuid.uuid4().hex[:6]}" for _ in range(4)]
    entries = 12

    async def publish_in_order(http: httpx.AsyncClient, n: int, account: str) -> None:
        for seq in range(entries):
            response = await http.post(
                f"{cluster.sidecar_url_of((n + seq) % INSTANCES)}/v1.0/publish/pubsub/{topic}",
                params={"metadata.partitionKey": account},
                json={"account": account, "seq": seq, "sleep_ms": 20},
            )
            assert response.status_code == 204, response.text

    async with httpx.AsyncClient() as http:
        await asyncio.gather(*(publish_in_order(http, n, a) for n, a in enumerate(accounts)))

    async def all_entries() -> list[Document] | None:
        written = await db[ledgers].find({"_id": {"$in": accounts}}).to_list()
        done = [ledger for ledger in written if len(ledger.get("entries", [])) == entries]
        return written if len(done) == len(accounts) else None

    for ledger in await eventually(all_entries, within=120, what="every ledger entry"):
        assert ledger["most_in_flight"] == 1, f"{ledger['_id']}: two entries at once"
        assert ledger["entries"] == list(range(entries)), f"{ledger['_id']}: out of order"


async def test_a_jobs_api_schedule_fires_once_per_occurrence(
    cluster: RunningWorker, db: Database
) -> None:
    name = f"scale-{uuid.uuid4().hex[:8]}"
    async with cluster.api(1) as api:
        response = await api.put(
            f"/api/schedules/{name}",
            json={"job": "flaky_job", "cron": "@every 1s", "payload": {"key": name}},
        )
        assert response.status_code == 200, response.text

        async def fired() -> list[Document] | None:
            runs = await db["job_runs"].find({"trigger.schedule": name}).to_list()
            return runs if len(runs) >= 15 else None

        await eventually(fired, within=60, what="15 firings")
        assert (await api.delete(f"/api/schedules/{name}")).status_code == 204

    runs = await db["job_runs"].find({"trigger.schedule": name}).sort("created_at").to_list()
    created = [run["created_at"] for run in runs]
    gaps = [later - earlier for earlier, later in itertools.pairwise(created)]
    assert min(gaps) > timedelta(milliseconds=500), "an occurrence ran twice"
    span = (created[-1] - created[0]).total_seconds()
    assert abs(len(runs) - 1 - span) <= 2, f"{len(runs)} runs over {span:.1f} s"


async def test_a_workflows_steps_spread_over_the_instances_and_each_runs_once(
    cluster: RunningWorker, db: Database
) -> None:
    width = 30
    async with cluster.api(1) as api:
        run_id = await trigger(api, "fan_out_workflow", {"width": width, "delay_ms": 300})
        run = await run_reaching(api, run_id, {"succeeded", "dead", "cancelled"}, within=120)
        steps = (await api.get("/api/runs", params={"parent": run_id, "limit": 500})).json()
    applied = [doc async for doc in db[WORKFLOW_PIECES].find({})]

    assert run["status"] == "succeeded", run["error"]
    assert run["result"]["output"]["indexes"] == list(range(1, width + 1))
    assert len(steps["items"]) == width + 1, "one run per step"
    assert sorted(doc["index"] for doc in applied) == list(range(width + 1)), "each once"
    assert {doc["_id"] for doc in applied} == {s["id"] for s in steps["items"]}
    where = collections.Counter(doc["instance"] for doc in applied)
    assert len(where) >= 2, f"the steps ran where Dapr sent them: {where}"


async def test_a_fan_out_data_processor_spreads_its_chunks_and_assembles_the_result(
    cluster: RunningWorker, db: Database
) -> None:
    async with cluster.api(2) as api:
        run_id = await trigger(api, "tally_fan_out", {"upto": 400, "per_chunk": 10})
        run = await run_reaching(api, run_id, {"succeeded", "dead", "cancelled"}, within=120)
        steps = (await api.get("/api/runs", params={"parent": run_id, "limit": 500})).json()
    chunks = [doc async for doc in db[TALLY_CHUNKS].find({})]

    assert run["status"] == "succeeded", run["error"]
    assert run["kind"] == "workflow"
    output = run["result"]["output"]
    assert output["chunks"] == 40
    assert sum(r["sum"] for r in output["results"]) == sum(range(1, 401))
    assert [r["sum"] for r in output["results"]][:2] == [55, 155], "in plan order"
    assert [s["job"] for s in steps["items"]].count("tally_fan_out.plan") == 1
    assert sorted(c["start"] for c in chunks) == list(range(1, 401, 10)), "each chunk once"
    where = collections.Counter(c["instance"] for c in chunks)
    assert len(where) >= 2, f"the chunks ran where Dapr sent them: {where}"


async def test_an_instance_stopped_gracefully_finishes_or_hands_over_its_runs(
    cluster: RunningWorker, db: Database
) -> None:
    stopping = 2  # the third instance; its grace period is 2 s (Worker:ShutdownGraceSeconds)
    keys = {
        f"term-{kind}-{uuid.uuid4().hex[:6]}": ms
        for kind, ms in [("short", 1500), ("short", 1500), ("long", 8000), ("long", 8000)]
    }
    async with cluster.api(stopping) as api:
        run_ids = {
            key: await trigger(api, "flaky_job", {"key": key, "sleep_ms": ms})
            for key, ms in keys.items()
        }

        async def all_running() -> bool:
            runs = [(await api.get(f"/api/runs/{rid}")).json() for rid in run_ids.values()]
            return all(run["status"] == "running" for run in runs)

        await eventually(all_running, what="the runs to start")
    cluster.signal_instance(stopping, signal.SIGTERM)

    async with cluster.api(0) as api:
        runs = {
            key: await run_reaching(api, rid, {"succeeded", "dead"}, within=60)
            for key, rid in run_ids.items()
        }

    stopped = cluster.instance_name(stopping)
    for key, run in runs.items():
        assert run["status"] == "succeeded", (key, run["error"])
        completions = await db["test_completions"].find_one({"_id": key})
        assert completions is not None
        assert completions["completions"] == 1, f"{key} completed twice"
        if "-short-" in key:
            assert run["instance"].startswith(stopped), "a short run finished where it started"
        else:
            assert not run["instance"].startswith(stopped), "a long run was handed over"


async def test_a_killed_instance_data_processor_is_finished_by_another_from_its_checkpoint(
    cluster: RunningWorker, db: Database
) -> None:
    customers = 900
    await seed_customers(db, customers)
    async with cluster.api(0) as api:
        run_id = await trigger(
            api, "recompute_customer_summaries", {"chunk_size": 30, "pause_ms": 100}
        )

        before = await progress_reaching(api, run_id, customers // 3)
    assert before["instance"].startswith(cluster.instance_name(0))
    cluster.signal_instance(0, signal.SIGKILL)

    async with cluster.api(1) as api:
        run = await run_reaching(api, run_id, {"succeeded", "dead"}, within=90)

    assert run["status"] == "succeeded", run["error"]
    assert len(run["attempts"]) == 2, run["attempts"]
    lost, finished = run["attempts"]
    assert lost["instance"] == before["instance"]
    assert lost["error"]["type"] == "LeaseExpired"
    assert finished["instance"] != before["instance"]
    assert run["progress"] == {"done": customers, "total": customers}
    assert await db["customer_summaries"].distinct("applications") == [1]
    assert await db["customer_summaries"].count_documents({}) == customers
