"""Overlap policies at the firing, in-process against the real database: a Jobs API schedule's
firing for an `overlap="skip"` job while a run of it is unfinished (here: one another instance
runs) is recorded as a skipped run naming that run, and makes no run to execute; once nothing of
it runs, a firing makes its run."""

from datetime import timedelta

import httpx
from bson import ObjectId

from app.core.clock import utc_now
from app.db.mongo import Database


async def test_a_firing_while_the_job_still_runs_is_recorded_as_skipped(
    client: httpx.AsyncClient, db: Database
) -> None:
    now = utc_now()
    running = ObjectId()
    await db["job_runs"].insert_one(
        {
            "_id": running,
            "job": "exclusive_job",
            "kind": "manual",
            "status": "running",
            "trigger": {"type": "manual"},
            "attempt": 1,
            "max_attempts": 1,
            "created_at": now,
            "started_at": now,
            "instance": "another-instance",
            "lease_until": now + timedelta(minutes=5),
            "attempts": [],
            "refusals": [],
        }
    )
    data = {"job": "exclusive_job"}

    answer = (await client.post("/job/exclusive-every-minute", json=data)).json()

    skipped = await db["job_runs"].find_one({"_id": ObjectId(answer["run_id"])})
    assert skipped is not None
    assert skipped["status"] == "cancelled"
    assert skipped["error"]["type"] == "OverlapSkipped"
    assert (
        f"run {running} of this job was still running (overlap='skip')"
        in (skipped["error"]["message"])
    )
    assert skipped["trigger"]["schedule"] == "exclusive-every-minute"

    await db["job_runs"].update_one(
        {"_id": running}, {"$set": {"status": "succeeded", "finished_at": utc_now()}}
    )
    later = (await client.post("/job/exclusive-later", json=data)).json()
    made = await db["job_runs"].find_one({"_id": ObjectId(later["run_id"])})
    assert made is not None
    assert made["status"] != "cancelled"
