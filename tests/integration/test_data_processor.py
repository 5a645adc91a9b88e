"""The customer-summary data processor: chunks, progress, checkpoint, cancel, resume."""

import random
from collections import defaultdict
from datetime import timedelta

import httpx
import pytest
from bson import ObjectId

from app.core.clock import utc_now
from app.db.mongo import Database
from tests.support import eventually, run_reaching, trigger

JOB = "recompute_customer_summaries"


async def seed(db: Database, *, customers: int, orders: int) -> dict[str, tuple[int, float]]:
    """Customers and orders; returns the expected (order count, total) per customer."""
    rng = random.Random(7)
    ids = [f"c{n:05d}" for n in range(customers)]
    await db["customers"].insert_many([{"_id": cid, "name": cid.upper()} for cid in ids])
    expected: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    rows = []
    for _ in range(orders):
        cid = rng.choice(ids)
        amount = rng.randint(1, 500)
        rows.append({"customer_id": cid, "amount": amount})
        expected[cid][0] += 1
        expected[cid][1] += amount
    await db["orders"].insert_many(rows)
    return {cid: (int(expected[cid][0]), expected[cid][1]) for cid in ids}


async def check_summaries(
    db: Database, expected: dict[str, tuple[int, float]], run_id: str
) -> None:
    summaries = {s["_id"]: s async for s in db["customer_summaries"].find()}
    assert set(summaries) == set(expected)
    for cid, (orders, total) in expected.items():
        assert (summaries[cid]["orders"], summaries[cid]["total_amount"]) == (orders, total), cid
        assert summaries[cid]["run_id"] == run_id
        assert summaries[cid]["applications"] == 1, f"{cid} was applied twice"


async def test_a_full_run_saves_progress_and_writes_every_summary(
    client: httpx.AsyncClient, db: Database
) -> None:
    expected = await seed(db, customers=230, orders=900)

    run_id = await trigger(client, JOB, {"chunk_size": 50})

    run = await run_reaching(client, run_id, {"succeeded", "dead"})
    assert run["status"] == "succeeded", run["error"]
    assert run["progress"] == {"done": 230, "total": 230}
    assert run["result"] == {"customers": 230, "written": 230, "total": 230}
    await check_summaries(db, expected, run_id)


async def test_cancel_stops_at_a_chunk_boundary(client: httpx.AsyncClient, db: Database) -> None:
    await seed(db, customers=400, orders=400)
    run_id = await trigger(client, JOB, {"chunk_size": 20, "pause_ms": 100})

    async def started() -> bool:
        run = (await client.get(f"/api/runs/{run_id}")).json()
        return bool(run["progress"] and run["progress"]["done"] >= 40)

    await eventually(started, what="two chunks done")
    response = await client.post(f"/api/runs/{run_id}/cancel")
    assert response.status_code == 202

    run = await run_reaching(client, run_id, {"cancelled", "succeeded"})
    assert run["status"] == "cancelled"
    done = run["progress"]["done"]
    assert 40 <= done < 400
    assert done % 20 == 0, "stopped at a chunk boundary"
    assert await db["customer_summaries"].count_documents({}) == done


@pytest.mark.parametrize("replayed_chunk", [False, True])
async def test_a_run_orphaned_by_a_dead_instance_resumes_from_its_checkpoint(
    client: httpx.AsyncClient, db: Database, replayed_chunk: bool
) -> None:
    """A run left `running` by an instance that died: its lease runs out, this instance claims
    it and goes on after the checkpoint. With `replayed_chunk`, the dead instance had written
    the next chunk but not its checkpoint: that chunk is replayed and must change nothing."""
    expected = await seed(db, customers=120, orders=500)
    ids = sorted(expected)
    run_id = str(ObjectId())
    now = utc_now()
    written = ids[:60] if replayed_chunk else ids[:40]
    await db["customer_summaries"].insert_many(
        [
            {
                "_id": cid,
                "orders": expected[cid][0],
                "total_amount": expected[cid][1],
                "run_id": run_id,
                "applications": 1,
            }
            for cid in written
        ]
    )
    await db["job_runs"].insert_one(
        {
            "_id": ObjectId(run_id),
            "job": JOB,
            "kind": "data",
            "status": "running",
            "trigger": {"type": "manual"},
            "attempt": 1,
            "max_attempts": 3,
            "created_at": now - timedelta(minutes=1),
            "started_at": now - timedelta(minutes=1),
            "instance": "a-worker-that-died",
            "lease_until": now - timedelta(seconds=1),
            "payload": {"chunk_size": 20, "pause_ms": 0},
            "progress": {"done": 40, "total": 120},
            "checkpoint": {"after": ids[39], "done": 40},
            "attempts": [],
            "cancel_requested": False,
        }
    )

    run = await run_reaching(client, run_id, {"succeeded", "dead"})

    assert run["status"] == "succeeded", run["error"]
    assert run["attempt"] == 2
    assert run["instance"] != "a-worker-that-died"
    assert [(a["instance"], a["status"]) for a in run["attempts"]] == [
        ("a-worker-that-died", "failed"),
        (run["instance"], "succeeded"),
    ]
    assert run["progress"] == {"done": 120, "total": 120}
    assert run["result"]["written"] == 120
    await check_summaries(db, expected, run_id)
