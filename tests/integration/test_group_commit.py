"""Group commit against the real database server: concurrent single writes go as few bulk
requests, and each writer still gets its own outcome."""

import asyncio
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

from app.db.group_commit import GroupCommit
from app.db.mongo import Document
from tests.support import MONGODB_URI, eventually, unique_database

WRITERS = 60


class CommandCounter(CommandListener):
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def started(self, event: CommandStartedEvent) -> None:
        self.counts[event.command_name] += 1

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass


@pytest.fixture
def commands() -> CommandCounter:
    return CommandCounter()


@pytest.fixture
async def db(commands: CommandCounter) -> AsyncIterator[AsyncDatabase[Document]]:
    """A database of its own, on a client whose commands `commands` counts."""
    name = unique_database("aevatar_gc")
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(
        MONGODB_URI, tz_aware=True, event_listeners=[commands]
    )
    yield mongo[name]
    await mongo.drop_database(name)
    await mongo.close()


async def test_concurrent_inserts_go_as_few_requests_and_a_duplicate_fails_only_its_writer(
    db: AsyncDatabase[Document], commands: CommandCounter
) -> None:
    items = db["items"]
    await items.insert_one({"_id": "taken"})
    writes = GroupCommit(items)
    ids = [f"item-{n}" for n in range(WRITERS)]
    ids[17] = "taken"
    commands.counts.clear()

    outcomes = await asyncio.gather(
        *(writes.insert_one({"_id": item_id, "n": n}) for n, item_id in enumerate(ids)),
        return_exceptions=True,
    )

    failed = [n for n, outcome in enumerate(outcomes) if isinstance(outcome, Exception)]
    assert failed == [17]
    assert isinstance(outcomes[17], DuplicateKeyError)
    stored = {document["_id"] async for document in items.find({"n": {"$exists": True}})}
    assert stored == set(ids) - {"taken"}
    assert 1 <= commands.counts["insert"] < WRITERS / 4, commands.counts


async def test_each_update_learns_whether_its_own_filter_matched(
    db: AsyncDatabase[Document], commands: CommandCounter
) -> None:
    runs = db["runs"]
    await runs.insert_many(
        [{"_id": n, "owner": "a" if n % 5 else "b", "status": "running"} for n in range(WRITERS)]
    )
    writes = GroupCommit(runs)
    commands.counts.clear()

    matched = await asyncio.gather(
        *(
            writes.update_one({"_id": n, "owner": "a"}, {"$set": {"status": "succeeded"}})
            for n in range(WRITERS)
        )
    )

    assert matched == [n % 5 != 0 for n in range(WRITERS)]
    succeeded = {d["_id"] async for d in runs.find({"status": "succeeded"})}
    assert succeeded == {n for n in range(WRITERS) if n % 5}
    assert commands.counts["update"] < WRITERS / 4, commands.counts


async def test_a_lone_write_goes_at_once_and_writes_keep_coming_after_a_batch(
    db: AsyncDatabase[Document], commands: CommandCounter
) -> None:
    items = db["items"]
    writes = GroupCommit(items)
    await writes.insert_one({"_id": "first"})
    assert await items.find_one({"_id": "first"}) is not None
    await asyncio.gather(*(writes.insert_one({"_id": f"later-{n}"}) for n in range(5)))
    assert await items.count_documents({}) == 6
    assert await writes.update_one({"_id": "first"}, {"$set": {"seen": True}})
    assert not await writes.update_one({"_id": "nowhere"}, {"$set": {"seen": True}})


async def test_when_the_database_is_away_every_writer_in_the_batch_gets_the_error() -> None:
    away: AsyncMongoClient[Document] = AsyncMongoClient(
        "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300"
    )
    writes = GroupCommit(away["nowhere"]["items"], timeout_seconds=0.5)
    try:
        outcomes = await asyncio.gather(
            *(writes.insert_one({"_id": n}) for n in range(10)),
            *(writes.update_one({"_id": n}, {"$set": {"x": 1}}) for n in range(10)),
            return_exceptions=True,
        )
    finally:
        await away.close()
    assert all(isinstance(outcome, PyMongoError) for outcome in outcomes), outcomes


@pytest.fixture
def frozen_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A database server of its own (a real SecantusDB process), to be frozen with SIGSTOP."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("secantusd-py")),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false", server
    finally:
        server.send_signal(signal.SIGCONT)
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


async def test_a_batch_the_server_never_answers_fails_its_writers_and_does_not_block_the_next(
    frozen_server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    uri, server = frozen_server
    client: AsyncMongoClient[Document] = AsyncMongoClient(uri, serverSelectionTimeoutMS=20_000)
    try:
        items = client["frozen"]["items"]
        writes = GroupCommit(items, timeout_seconds=1.5)
        await writes.insert_one({"_id": "before"})  # connected, then frozen mid-conversation
        server.send_signal(signal.SIGSTOP)

        first = [asyncio.create_task(writes.insert_one({"_id": f"a-{n}"})) for n in range(5)]
        await asyncio.sleep(0)  # the first batch is on its way; these wait behind it
        second = [asyncio.create_task(writes.insert_one({"_id": f"b-{n}"})) for n in range(5)]
        outcomes = await asyncio.wait_for(
            asyncio.gather(*first, *second, return_exceptions=True), timeout=20
        )
        assert all(isinstance(outcome, PyMongoError) for outcome in outcomes), outcomes

        server.send_signal(signal.SIGCONT)

        async def write_goes_through() -> bool:
            try:
                await writes.insert_one({"_id": "after"})
            except PyMongoError:
                return False
            return True

        await eventually(write_goes_through, within=30, what="a write after the thaw")
        assert await items.find_one({"_id": "after"}) is not None
    finally:
        await client.close()
