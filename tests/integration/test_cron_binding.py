import httpx
from bson import ObjectId

from app.db.mongo import Database, Document
from tests.support import eventually


async def test_a_cron_tick_leaves_a_run_document(client: httpx.AsyncClient, db: Database) -> None:
    response = await client.post("/heartbeat-cron")

    assert response.status_code == 200
    run_id = response.json()["run_id"]

    async def finished() -> Document | None:
        return await db["job_runs"].find_one({"_id": ObjectId(run_id), "status": "succeeded"})

    run = await eventually(finished, what="the heartbeat run to finish")
    assert await db["job_runs"].count_documents({"job": "heartbeat"}) == 1
    assert run["kind"] == "scheduled"
    assert run["status"] == "succeeded"
    assert run["trigger"]["type"] == "cron"
    assert run["result"]["tick"] == run["trigger"]["tick"].isoformat()
