"""Exactly-once effects for a handler that writes only to MongoDB (`transactional=True`), on the
real stack: two instances, a 3 s lease, a handler that is not idempotent (an `$inc` per call).

- An instance frozen (SIGSTOP) in the middle of a run: the other instance takes the run over
  when its lease runs out. The plain handler applies the event twice (its first write landed
  before the freeze); the transactional one once, whichever attempt commits.
- Events published steadily through a database freeze and a database restart: each applied by
  the transactional handler exactly once.
"""

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from app.db.mongo import Database
from tests.e2e.deployment import (
    Ports,
    RunningWorker,
    _pids_listening,
    database_of,
    empty_streams,
    prepare_worker,
    started,
)
from tests.e2e.faults import (
    SteadyPublisher,
    restart_stack_service,
    signal_stack_service,
    until_applied_again,
)
from tests.support import eventually, unique_database
from tests.tallies import (
    PLAIN_JOB,
    PLAIN_TOPIC,
    TALLIES,
    TRANSACTIONAL_JOB,
    TRANSACTIONAL_TOPIC,
    tally_id,
)

pytestmark = pytest.mark.e2e

ONCE_PORTS = Ports(app=18800, http=14300, grpc=15801, metrics=19890)
# How long the server lets a transaction live: the frozen instance's transaction holds its run
# until the server aborts it.
TRANSACTION_LIFETIME_SECONDS = 10


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    worker = prepare_worker(
        tmp_path_factory.mktemp("once"),
        app_id="worker-once",
        ports=ONCE_PORTS,
        database=unique_database("aevatar_once"),
        instances=2,
        env={"Worker__Modules": '["tests.transactional_workers"]'},
    )
    worker.namespace = f"e2e-once-{uuid.uuid4().hex[:8]}"
    try:
        with started(worker) as running:
            yield running
    finally:
        empty_streams([TRANSACTIONAL_TOPIC, PLAIN_TOPIC])


@pytest.fixture(scope="module")
async def db(
    pair: RunningWorker, mongo: AsyncMongoClient[dict[str, Any]]
) -> AsyncIterator[Database]:
    async with database_of(pair, mongo) as db:
        yield db


@pytest.fixture
async def short_transactions(mongo: AsyncMongoClient[dict[str, Any]]) -> AsyncIterator[None]:
    """The server's transaction lifetime shortened for the test (the default is 60 s)."""
    answer = await mongo.admin.command(
        {"setParameter": 1, "transactionLifetimeLimitSeconds": TRANSACTION_LIFETIME_SECONDS}
    )
    yield
    with contextlib.suppress(Exception):  # a database restarted meanwhile has its default
        await mongo.admin.command(
            {"setParameter": 1, "transactionLifetimeLimitSeconds": answer["was"]}
        )


def tally_event(key: str, **data: Any) -> dict[str, Any]:
    """With its `time`: sent again, it is the same event (docs/reliability.md)."""
    return {
        "specversion": "1.0",
        "id": key,
        "source": "exactly-once",
        "type": "tally",
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": {"key": key, **data},
    }


async def publish(worker: RunningWorker, topic: str, event: dict[str, Any]) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{worker.sidecar_url}/v1.0/publish/pubsub/{topic}",
            json=event,
            headers={"content-type": "application/cloudevents+json"},
        )
    assert response.status_code == 204, response.text


async def run_of(db: Database, job: str, key: str) -> dict[str, Any] | None:
    return await db["job_runs"].find_one({"job": job, "trigger.event_id": key})


async def applied(db: Database, job: str, key: str) -> int:
    document = await db[TALLIES].find_one({"_id": tally_id(job, key)})
    return 0 if document is None else int(document["applied"])


def instance_index(worker: RunningWorker, instance: str) -> int:
    """The index of the app whose instance id (`<name>-<pid>`) a run names."""
    name = instance.rsplit("-", 1)[0]
    return next(n for n in range(worker.instances) if worker.instance_name(n) == name)


def signal_app(worker: RunningWorker, n: int, sig: signal.Signals) -> None:
    for pid in _pids_listening(worker.app_port(n)):
        os.kill(pid, sig)


async def taken_over_while_frozen(db: Database, worker: RunningWorker, job: str, topic: str) -> str:
    """Publishes an event whose handler holds its run for 4 s after its write, freezes the
    instance that runs it, waits until the other instance has finished the run, and thaws the
    frozen one; the event's key, once the thawed instance has given the run up."""
    key = f"frozen-{uuid.uuid4().hex[:8]}"
    await publish(worker, topic, tally_event(key, hold_ms=4000))

    async def running() -> dict[str, Any] | None:
        run = await run_of(db, job, key)  # stored at the lease's first renewal
        return run if run is not None and run["status"] == "running" else None

    # Up to two minutes: a sidecar whose app turns healthy again (thawed by the scenario before)
    # re-subscribes, and a message it read in that moment is cancelled ("context canceled") and
    # stays pending in Redis until the component's processingTimeout (60 s) hands it out again.
    run = await eventually(running, within=150, what=f"the run of {key} running")
    frozen = instance_index(worker, run["instance"])
    signal_app(worker, frozen, signal.SIGSTOP)
    try:

        async def finished_elsewhere() -> dict[str, Any] | None:
            current = await run_of(db, job, key)
            ended = current is not None and current["status"] in {"succeeded", "dead"}
            return current if ended else None

        finished = await eventually(finished_elsewhere, within=90, what=f"{key} taken over")
    finally:
        signal_app(worker, frozen, signal.SIGCONT)
    assert finished["status"] == "succeeded", finished["error"]
    assert finished["instance"] != run["instance"], "the other instance took the run over"

    async def given_up() -> bool:
        return any(
            line.get("run_id") == str(run["_id"])
            and ("lease lost" in line["message"] or "taken over" in line["message"])
            for line in worker.app_log_lines()
        )

    await eventually(given_up, within=30, what="the thawed instance to give the run up")
    return key


async def test_a_run_taken_over_from_a_frozen_instance_is_applied_once_when_transactional(
    pair: RunningWorker, db: Database, short_transactions: None
) -> None:
    plain = await taken_over_while_frozen(db, pair, PLAIN_JOB, PLAIN_TOPIC)
    once = await taken_over_while_frozen(db, pair, TRANSACTIONAL_JOB, TRANSACTIONAL_TOPIC)

    assert await applied(db, PLAIN_JOB, plain) == 2, "the plain handler applied it twice"
    assert await applied(db, TRANSACTIONAL_JOB, once) == 1
    tally = await db[TALLIES].find_one({"_id": tally_id(TRANSACTIONAL_JOB, once)})
    assert tally is not None
    run = await run_of(db, TRANSACTIONAL_JOB, once)
    assert run is not None
    assert tally["by"] == [f"{run['instance']}#{run['attempt']}"], "the committed attempt's"
    marker = await db["applied_runs"].find_one({"_id": str(run["_id"])})
    assert marker is not None
    assert marker["attempt"] == run["attempt"]


async def test_steady_events_through_a_database_freeze_and_restart_are_each_applied_once(
    pair: RunningWorker, db: Database
) -> None:
    publishers = {
        job: SteadyPublisher(pair, topic, rate_per_second=10, event_of=tally_event)
        for job, topic in ((TRANSACTIONAL_JOB, TRANSACTIONAL_TOPIC), (PLAIN_JOB, PLAIN_TOPIC))
    }
    publishing = [asyncio.create_task(p.run()) for p in publishers.values()]

    job_of = {id(publisher): job for job, publisher in publishers.items()}

    async def applied(publisher: SteadyPublisher, keys: list[str]) -> int:
        ids = [tally_id(job_of[id(publisher)], key) for key in keys]
        return await db[TALLIES].count_documents({"_id": {"$in": ids}})

    async def applying_again(what: str) -> None:
        await until_applied_again(list(publishers.values()), applied, what=what, within=240)

    await applying_again("the traffic to be applied")
    signal_stack_service("secantusdb", signal.SIGSTOP)
    try:
        await asyncio.sleep(15)  # the freeze's length, while the traffic goes on
    finally:
        signal_stack_service("secantusdb", signal.SIGCONT)
    await applying_again("the traffic to be applied after the freeze")
    await asyncio.to_thread(restart_stack_service, "secantusdb")
    await applying_again("the traffic to be applied after the restart")
    for publisher in publishers.values():
        publisher.stop()
    await asyncio.gather(*publishing)

    counts: dict[str, dict[str, int]] = {}
    for job, publisher in publishers.items():
        ids = [tally_id(job, key) for key in publisher.published]

        async def all_applied(ids: list[str] = ids) -> dict[str, int] | None:
            found = {
                doc["_id"]: int(doc["applied"])
                async for doc in db[TALLIES].find({"_id": {"$in": ids}})
            }
            return found if len(found) == len(ids) else None

        counts[job] = await eventually(all_applied, within=240, interval=2, what=f"{job} applied")
    twice = {job: sum(1 for n in found.values() if n > 1) for job, found in counts.items()}
    published = len(counts[TRANSACTIONAL_JOB])
    print(f"\n[exactly-once] published {published} each; applied twice: {twice}")  # noqa: T201

    assert len(counts[TRANSACTIONAL_JOB]) > 200
    assert twice[TRANSACTIONAL_JOB] == 0
    runs = db["job_runs"].find({"job": TRANSACTIONAL_JOB}, {"status": 1})
    assert {run["status"] async for run in runs} == {"succeeded"}
