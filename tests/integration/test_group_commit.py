"""Group commit against a database that freezes and restarts: each caller gets its own answer,
a batch the server never answers fails its callers within the deadline, and the writes after
the server is back go through at once (the sender is not wedged behind the lost batch).

The database is reached through a TCP proxy that freezes (connections open, nothing answered,
as a server under SIGSTOP) and is cut and started again (a restart), so the test runs the same
against SecantusDB and a real mongod."""

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from app.db.grouped import GroupedInserts, GroupedLookups
from app.db.mongo import Database, Document
from tests.support import MONGODB_URI, eventually
from tests.tcp_proxy import TcpProxy

DEADLINE_SECONDS = 1.0


@pytest.fixture
async def proxied_db(proxy: TcpProxy, database_name: str) -> AsyncIterator[Database]:
    query = urlsplit(MONGODB_URI).query
    uri = (
        f"mongodb://127.0.0.1:{proxy.port}/?{query}"
        "&serverSelectionTimeoutMS=1000&directConnection=true"
    )
    client: AsyncMongoClient[Document] = AsyncMongoClient(uri)
    yield client[database_name]
    await client.close()


async def test_each_caller_gets_its_own_answer(db: Database) -> None:
    await db["grouped"].create_index("key", unique=True)
    inserts = GroupedInserts(db["grouped"], timeout_seconds=10)
    lookups = GroupedLookups(db["grouped"], "key", timeout_seconds=10)

    documents = [{"key": f"k{n % 30}", "n": n} for n in range(40)]  # 10 keys twice
    answers = await asyncio.gather(*(inserts.insert(d) for d in documents))
    found = await asyncio.gather(*(lookups.exists(f"k{n}") for n in range(25, 35)))

    assert answers == [True] * 30 + [False] * 10
    assert await db["grouped"].count_documents({}) == 30
    assert found == [True] * 5 + [False] * 5


async def test_writes_go_through_once_a_frozen_then_restarted_server_is_back(
    proxy: TcpProxy, proxied_db: Database, db: Database
) -> None:
    inserts = GroupedInserts(proxied_db["grouped"], timeout_seconds=DEADLINE_SECONDS)
    assert await inserts.insert({"_id": "before"}) is True

    proxy.freeze()
    stalled = [asyncio.ensure_future(inserts.insert({"_id": f"frozen-{n}"})) for n in range(20)]
    outcomes = await asyncio.wait_for(asyncio.gather(*stalled, return_exceptions=True), 60)

    # Every caller of the lost batches got an error of its own (none left waiting for ever).
    assert all(isinstance(o, (PyMongoError, TimeoutError)) for o in outcomes), outcomes

    await proxy.cut()  # the server restarts: every connection the driver held is gone
    proxy.thaw()
    await proxy.start()

    async def all_stored() -> bool:
        wanted = [f"after-{n}" for n in range(20)]
        try:
            await asyncio.gather(*(inserts.insert({"_id": key}) for key in wanted))
        except PyMongoError:
            return False  # the driver finds the server again: the next try goes through
        return await db["grouped"].count_documents({"_id": {"$in": wanted}}) == 20

    await eventually(all_stored, within=15, interval=0.2, what="writes after the restart")
    assert await db["grouped"].find_one({"_id": "before"}) is not None
