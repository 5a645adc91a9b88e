"""A sidecar whose app was killed while events of a bulk-subscribed topic kept coming delivers
again, on every topic, once the app is back.

One instance: no other daprd can take over what this one holds, so a sidecar that stopped
delivering shows as events never applied. daprd 1.18.2 did stop (seen with its goroutine dumps,
2026-12-07): the bulk subscription closed by the app's failed health check left each Redis
worker that picked one of its messages afterwards waiting for a batch that would never be sent
(`pkg/runtime/pubsub/default_bulksub.go`), and the component's workers serve every topic. The
stack's daprd is built with stack/patches/dapr (see stack/build-dapr.sh).
"""

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from app.db.mongo import Database
from app.workers.builtin.message_queue import TOPIC as WORK_QUEUE
from stack.scale import pubsub_of_environment
from tests.e2e.deployment import Ports, RunningWorker, database_of, empty_streams, running_cluster
from tests.e2e.faults import FaultInjector, SteadyPublisher
from tests.support import eventually, unique_database
from tests.workers import BULK_WORK_QUEUE

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        pubsub_of_environment() == "kafka", reason="the Redis component's shared workers"
    ),
]

SOLO_PORTS = Ports(app=18500, http=14500, grpc=16001, metrics=20090)
# Far past what a sidecar needs to see its app healthy again and subscribe (seconds), and past
# the pub/sub's processingTimeout (60 s), after which a sidecar claims its own pending
# messages again: a sidecar that delivers nothing by then never will.
DELIVERS_AGAIN_SECONDS = 120
# Events of the bulk topic published while the app is dead: enough to fill what daprd reads
# ahead (the component's queue and the bulk subscription's buffer), at 20/s.
PUBLISHED_WHILE_DEAD = 120


@pytest.fixture(scope="module")
def solo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    empty_streams()  # a new consumer group reads its streams from their start
    with running_cluster(
        tmp_path_factory.mktemp("solo"),
        app_id="worker-solo",
        ports=SOLO_PORTS,
        database=unique_database("aevatar_solo"),
        instances=1,
    ) as running:
        yield running
    empty_streams()


@pytest.fixture(scope="module")
def faults(solo: RunningWorker) -> Iterator[FaultInjector]:
    injector = FaultInjector(solo, solo.log_file.with_suffix(".restarted.log"))
    yield injector
    injector.stop_all()


@pytest.fixture(scope="module")
async def db(
    solo: RunningWorker, mongo: AsyncMongoClient[dict[str, Any]]
) -> AsyncIterator[Database]:
    async with database_of(solo, mongo) as db:
        yield db


async def test_a_killed_apps_sidecar_delivers_every_topic_again_once_the_app_is_back(
    solo: RunningWorker, faults: FaultInjector, db: Database
) -> None:
    async def applied(ids: list[str]) -> int:
        return await db["work_items"].count_documents({"_id": {"$in": ids}})

    in_bulk = SteadyPublisher(solo, BULK_WORK_QUEUE, rate_per_second=20)
    publishing = asyncio.create_task(in_bulk.run())
    try:
        await eventually(
            lambda: _at_least(applied, in_bulk.published[:20], 20),
            within=60,
            what="the bulk topic to flow",
        )
        image = faults.kill_app(0)
        mark = len(in_bulk.published)
        await eventually(
            lambda: _published_since(in_bulk, mark, PUBLISHED_WHILE_DEAD),
            within=60,
            what="events to arrive while the app is dead",
        )
        await asyncio.to_thread(faults.restart_app, image, 0)
    finally:
        in_bulk.stop()
        await publishing

    one_by_one = SteadyPublisher(solo, WORK_QUEUE, rate_per_second=10)
    publishing = asyncio.create_task(one_by_one.run())
    try:
        await eventually(
            lambda: _published_since(one_by_one, 0, 30), within=60, what="30 events published"
        )
    finally:
        one_by_one.stop()
        await publishing

    await eventually(
        lambda: _at_least(applied, one_by_one.published, len(one_by_one.published)),
        within=DELIVERS_AGAIN_SECONDS,
        what="the events published after the restart (one per request) to be applied",
    )
    await eventually(
        lambda: _at_least(applied, in_bulk.published, len(in_bulk.published)),
        within=DELIVERS_AGAIN_SECONDS,
        what="every event of the bulk topic to be applied",
    )


async def _at_least(applied: Any, ids: list[str], n: int) -> bool:
    return bool(ids) and await applied(ids) >= n


async def _published_since(publisher: SteadyPublisher, mark: int, n: int) -> bool:
    return len(publisher.published) - mark >= n
