"""The dead set grouped by failure, and requeueing all that match a filter, with a dry-run
count first, through the operator API against the real database."""

import httpx

from app.db.mongo import Database
from app.models.failures import fingerprint_of
from tests.support import eventually, run_reaching


async def dead_run(client: httpx.AsyncClient, key: str) -> str:
    response = await client.post(
        "/api/jobs/flaky_job/trigger", json={"payload": {"key": key, "fail_times": 3}}
    )
    run_id: str = response.json()["run_id"]
    await run_reaching(client, run_id, {"dead"})
    return run_id


async def test_dead_runs_are_grouped_by_failure_and_requeued_by_filter(
    client: httpx.AsyncClient, db: Database
) -> None:
    flaky = [await dead_run(client, f"order-{n}") for n in (101, 202)]
    doomed = (await client.post("/api/jobs/doomed_job/trigger")).json()["run_id"]
    await run_reaching(client, doomed, {"dead"})

    groups = (await client.get("/api/dead-letters/groups")).json()
    by_type = {group["error_type"]: group for group in groups}
    assert by_type["RuntimeError"]["count"] == 2
    assert by_type["RuntimeError"]["message"] == "planned failure <n> of <n> for order-<n>"
    assert by_type["RuntimeError"]["jobs"] == {"flaky_job": 2}
    assert by_type["GiveUp"]["count"] == 1
    fingerprint = by_type["RuntimeError"]["fingerprint"]
    assert fingerprint == fingerprint_of("RuntimeError", "planned failure 3 of 3 for order-101")

    dry = await client.post("/api/dead-letters/requeue", params={"fingerprint": fingerprint})
    assert dry.json() == {"matching": 2, "requeued": [], "skipped": {}}
    assert await db["job_runs"].count_documents({"trigger.type": "requeue"}) == 0

    done = await client.post(
        "/api/dead-letters/requeue", params={"fingerprint": fingerprint, "dry_run": "false"}
    )
    assert done.json()["matching"] == 2
    for run_id in done.json()["requeued"]:
        run = await run_reaching(client, run_id, {"succeeded"})
        assert run["trigger"]["requeued_from"] in flaky

    left = (await client.get("/api/dead-letters/groups")).json()
    assert [group["error_type"] for group in left] == ["GiveUp"]
    again = await client.post(
        "/api/dead-letters/requeue", params={"fingerprint": fingerprint, "dry_run": "false"}
    )
    assert again.json()["matching"] == 0

    async def audited() -> dict[str, object] | None:
        return await db["audit_log"].find_one({"action": "requeue-matching"})

    entry = await eventually(audited, what="the audit entry")
    assert entry["who"] == "api"
    assert sorted(entry["run_ids"]) == sorted(done.json()["requeued"])  # type: ignore[call-overload]
