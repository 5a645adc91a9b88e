"""Handler writes through `ctx.db`: concurrent `insert_one` calls go to the server together,
each caller with its own result or its own error, as pymongo's `insert_one` would give it."""

import asyncio

import pytest
from pymongo.errors import DuplicateKeyError, WriteError
from pymongo.results import InsertOneResult

from app.db.coalescing import CoalescingDatabase
from app.db.mongo import Database
from bench.database import requests_served


@pytest.fixture
def coalescing(db: Database) -> CoalescingDatabase:
    return CoalescingDatabase(db, timeout_seconds=10)


async def test_concurrent_inserts_go_together_each_with_its_own_answer(
    coalescing: CoalescingDatabase, db: Database
) -> None:
    await db["orders"].create_index("ref", unique=True)
    documents = [{"ref": f"r{n % 30}", "n": n} for n in range(40)]  # 10 refs twice
    before = await requests_served(db.client)

    answers = await asyncio.gather(
        *(coalescing["orders"].insert_one(d) for d in documents), return_exceptions=True
    )

    requests = await requests_served(db.client) - before
    assert requests < 20, f"40 inserts took {requests} requests: they were not coalesced"
    inserted = [a for a in answers if isinstance(a, InsertOneResult)]
    assert len(inserted) == 30
    assert [type(a) for a in answers[30:]] == [DuplicateKeyError] * 10
    stored = {d["_id"]: d["n"] async for d in db["orders"].find()}
    assert {r.inserted_id for r in inserted} == set(stored)
    assert sorted(stored.values()) == list(range(30))


async def test_an_insert_the_server_refuses_fails_its_caller_alone(
    coalescing: CoalescingDatabase, db: Database
) -> None:
    await db.create_collection(
        "checked", validator={"$jsonSchema": {"required": ["amount"]}}, validationAction="error"
    )

    good, bad = await asyncio.gather(
        coalescing["checked"].insert_one({"amount": 1}),
        coalescing["checked"].insert_one({"no_amount": True}),
        return_exceptions=True,
    )

    assert isinstance(good, InsertOneResult)
    assert isinstance(bad, WriteError)
    assert await db["checked"].count_documents({}) == 1


async def test_every_other_call_is_pymongos_own(coalescing: CoalescingDatabase) -> None:
    orders = coalescing.get_collection("orders")
    await orders.insert_one({"_id": "o-1", "state": "new"})

    updated = await orders.update_one({"_id": "o-1"}, {"$set": {"state": "paid"}})

    assert updated.modified_count == 1
    assert await coalescing.orders.find_one({"_id": "o-1"}) == {"_id": "o-1", "state": "paid"}
