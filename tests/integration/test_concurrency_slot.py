"""A job's concurrency slot is held by its handler alone: the next run's handler starts while
the run before it is still being written (here, the database frozen behind a proxy the moment
the first handler ends)."""

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest

from app.db.mongo import Database
from tests import slot_workers
from tests.integration.test_bulk_delivery import deliver_bulk, entry
from tests.integration.test_events import cloud_event
from tests.support import eventually
from tests.tcp_proxy import TcpProxy


@pytest.fixture
def freeze_after_each_handler(proxy: TcpProxy) -> Iterator[None]:
    slot_workers.started.clear()
    slot_workers.after_handler.append(proxy.freeze)
    yield
    slot_workers.after_handler.clear()
    proxy.thaw()


@pytest.mark.usefixtures("freeze_after_each_handler")
async def test_the_next_handler_starts_while_the_run_before_is_written(
    client_via_proxy: httpx.AsyncClient, proxy: TcpProxy, db: Database
) -> None:
    keys = [f"slot-{uuid.uuid4().hex[:8]}-{n}" for n in range(2)]
    # One bulk delivery: both events' redelivery lookups go out in one request, before either
    # handler runs (and freezes the database).
    entries = [entry(cloud_event({"key": key})) for key in keys]
    delivering = asyncio.create_task(
        deliver_bulk(client_via_proxy, slot_workers.ONE_SLOT_TOPIC, entries)
    )

    async def both_started() -> bool:
        return sorted(slot_workers.started) == sorted(keys)

    # The first run's outcome write waits on the frozen database; its slot must not.
    await eventually(both_started, within=10, what="the second handler, its slot given back")
    assert not delivering.done(), "no run can have been written while the database is frozen"

    proxy.thaw()
    statuses = await asyncio.wait_for(delivering, timeout=30)
    assert sorted(statuses.values()) == ["SUCCESS", "SUCCESS"]
    runs = await db["job_runs"].find({"payload.key": {"$in": keys}}).to_list()
    assert [run["status"] for run in runs] == ["succeeded", "succeeded"]
