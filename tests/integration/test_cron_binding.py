import httpx

from app.db.mongo import Database


async def test_a_cron_tick_leaves_a_run_document(client: httpx.AsyncClient, db: Database) -> None:
    response = await client.post("/heartbeat-cron")

    assert response.status_code == 200
    run_id = response.json()["run_id"]
    runs = [run async for run in db["job_runs"].find({"job": "heartbeat"})]
    assert len(runs) == 1
    run = runs[0]
    assert str(run["_id"]) == run_id
    assert run["kind"] == "scheduled"
    assert run["status"] == "succeeded"
    assert run["trigger"]["type"] == "cron"
    assert run["result"]["tick"] == run["trigger"]["tick"].isoformat()
