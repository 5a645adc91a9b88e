"""The operator API over the run engine: triggers, retries, the dead set, requeue, paging."""

import httpx
import pytest
from bson import ObjectId

from app.db.mongo import Database
from tests.support import eventually, run_reaching, trigger


async def test_jobs_lists_every_kind_with_its_trigger(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/jobs")

    assert response.status_code == 200
    jobs = {job["name"]: job for job in response.json()}
    assert {jobs[name]["kind"] for name in jobs} == {
        "scheduled",
        "event",
        "queue",
        "data",
        "integration",
        "manual",
        "workflow",
    }
    assert (jobs["doomed_job"]["kind"], jobs["doomed_job"]["trigger"]) == ("manual", None)
    assert jobs["heartbeat"]["trigger"] == "@every 2s"
    assert jobs["record_domain_event"]["trigger"] == "domain-events"
    assert jobs["MessageQueueProcessor"]["trigger"] == "work-items"
    assert jobs["MessageQueueProcessor"]["concurrency"] == 4
    assert jobs["ScheduledReportWorker"]["max_attempts"] == 3
    assert jobs["heartbeat"]["last_run"] is None


async def test_a_trigger_starts_a_run_that_the_job_list_then_shows(
    client: httpx.AsyncClient,
) -> None:
    run_id = await trigger(client, "heartbeat")

    run = await run_reaching(client, run_id, {"succeeded"})
    assert run["trigger"] == {"type": "manual"}
    assert run["attempt"] == 1
    assert run["instance"]
    assert run["duration_ms"] >= 0
    assert run["started_at"] <= run["finished_at"]
    jobs = {job["name"]: job for job in (await client.get("/api/jobs")).json()}
    assert jobs["heartbeat"]["last_run"]["id"] == run_id


async def test_a_failing_run_is_retried_and_every_attempt_is_kept(
    client: httpx.AsyncClient,
) -> None:
    run_id = await trigger(client, "flaky_job", {"key": "retry-2", "fail_times": 2})

    run = await run_reaching(client, run_id, {"succeeded", "dead"})

    assert run["status"] == "succeeded"
    assert run["attempt"] == 3
    assert [a["status"] for a in run["attempts"]] == ["failed", "failed", "succeeded"]
    assert "planned failure 1 of 2" in run["attempts"][0]["error"]["message"]
    assert "Traceback" in run["attempts"][1]["error"]["traceback"]
    assert run["result"] == {"key": "retry-2", "attempts_seen": 3}
    assert run["error"] is None


async def test_retries_then_dead_then_requeue_to_success(client: httpx.AsyncClient) -> None:
    plan = {"key": "dead-then-requeue", "fail_times": 4}
    run_id = await trigger(client, "flaky_job", plan)

    dead = await run_reaching(client, run_id, {"dead"})
    assert dead["attempt"] == 3 == dead["max_attempts"]
    assert dead["error"]["type"] == "RuntimeError"
    letters = (await client.get("/api/dead-letters")).json()["items"]
    letter = next(item for item in letters if item["id"] == run_id)
    assert letter["payload"] == {**plan, "sleep_ms": 0}
    assert letter["error"]["message"] == "planned failure 3 of 4 for dead-then-requeue"

    response = await client.post(f"/api/dead-letters/{run_id}/requeue")
    assert response.status_code == 202
    requeued_id = response.json()["run_id"]
    assert requeued_id != run_id

    requeued = await run_reaching(client, requeued_id, {"succeeded", "dead"})
    assert requeued["status"] == "succeeded"
    assert requeued["trigger"] == {"type": "requeue", "requeued_from": run_id}
    assert requeued["payload"] == dead["payload"]
    assert requeued["attempt"] == 2  # attempts 4 (fails) and 5 (succeeds) of the plan
    remaining = (await client.get("/api/dead-letters")).json()["items"]
    assert run_id not in {item["id"] for item in remaining}
    original = (await client.get(f"/api/runs/{run_id}")).json()
    assert original["requeued_as"] == requeued_id
    again = await client.post(f"/api/dead-letters/{run_id}/requeue")
    assert again.status_code == 409


async def test_give_up_sends_a_run_to_the_dead_set_at_once(client: httpx.AsyncClient) -> None:
    run_id = await trigger(client, "doomed_job")

    run = await run_reaching(client, run_id, {"dead"})
    assert run["attempt"] == 1
    assert run["error"]["type"] == "GiveUp"


async def test_retry_of_a_dead_run_starts_a_new_run(client: httpx.AsyncClient) -> None:
    run_id = await trigger(client, "doomed_job")
    await run_reaching(client, run_id, {"dead"})

    response = await client.post(f"/api/runs/{run_id}/retry")

    assert response.status_code == 202
    new_id = response.json()["run_id"]
    assert new_id != run_id
    retried = await run_reaching(client, new_id, {"dead"})
    assert retried["trigger"] == {"type": "manual", "retry_of": run_id}


async def test_a_payload_that_fails_validation_is_refused_and_nothing_runs(
    client: httpx.AsyncClient, db: Database
) -> None:
    response = await client.post(
        "/api/jobs/flaky_job/trigger", json={"payload": {"fail_times": "many"}}
    )

    assert response.status_code == 422
    assert {tuple(e["loc"]) for e in response.json()["errors"]} == {("key",), ("fail_times",)}
    assert await db["job_runs"].count_documents({}) == 0


async def test_unknown_jobs_and_runs_are_404(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/jobs/nope/trigger")).status_code == 404
    assert (await client.get("/api/runs/not-an-id")).status_code == 404
    assert (await client.get("/api/runs/6b0acd68af8835e9379705c3")).status_code == 404
    assert (await client.post("/api/runs/6b0acd68af8835e9379705c3/cancel")).status_code == 404


async def test_runs_page_newest_first_with_a_cursor(client: httpx.AsyncClient) -> None:
    created = [await trigger(client, "heartbeat") for _ in range(5)]
    for run_id in created:
        await run_reaching(client, run_id, {"succeeded"})

    seen: list[str] = []
    before: str | None = None
    while True:
        params: dict[str, str | int] = {"job": "heartbeat", "status": "succeeded", "limit": 2}
        if before:
            params["before"] = before
        page = (await client.get("/api/runs", params=params)).json()
        seen += [run["id"] for run in page["items"]]
        before = page["next"]
        if before is None:
            break

    assert seen == list(reversed(created))


async def test_cancel_of_a_finished_run_is_a_conflict(client: httpx.AsyncClient) -> None:
    run_id = await trigger(client, "heartbeat")
    await run_reaching(client, run_id, {"succeeded"})

    response = await client.post(f"/api/runs/{run_id}/cancel")

    assert response.status_code == 409
    assert response.json()["status"] == "succeeded"


async def test_retry_brings_a_waiting_attempt_forward(client: httpx.AsyncClient) -> None:
    run_id = await trigger(client, "deferring_job")
    failed = await run_reaching(client, run_id, {"failed"})
    assert failed["next_attempt_at"] > failed["attempts"][0]["finished_at"]

    response = await client.post(f"/api/runs/{run_id}/retry")

    assert response.status_code == 202
    assert response.json()["run_id"] == run_id

    async def second_attempt_done() -> dict[str, object] | None:
        run = (await client.get(f"/api/runs/{run_id}")).json()
        return run if len(run["attempts"]) == 2 else None

    run = await eventually(second_attempt_done, what="the second attempt")
    assert run["status"] == "failed"
    assert run["attempt"] == 2


async def test_a_run_waiting_for_its_retry_is_cancelled_at_once(
    client: httpx.AsyncClient,
) -> None:
    run_id = await trigger(client, "deferring_job")
    await run_reaching(client, run_id, {"failed"})

    response = await client.post(f"/api/runs/{run_id}/cancel")

    assert response.status_code == 202
    run = (await client.get(f"/api/runs/{run_id}")).json()
    assert run["status"] == "cancelled"
    assert run["next_attempt_at"] is None
    assert (await client.post(f"/api/runs/{run_id}/retry")).status_code == 202


async def test_the_status_filter_refuses_unknown_statuses(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/runs", params={"status": "exploded"})
    assert response.status_code == 422


async def test_the_openapi_schema_documents_the_operator_api(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    for path in (
        "/api/jobs",
        "/api/jobs/{name}/trigger",
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/runs/{run_id}/cancel",
        "/api/runs/{run_id}/retry",
        "/api/dead-letters",
        "/api/dead-letters/{dead_letter_id}/requeue",
        "/api/schedules",
        "/api/schedules/{name}",
    ):
        assert path in paths, path
    assert paths["/api/runs"]["get"]["description"].startswith("Runs, newest first")


async def test_schedules_are_validated_before_the_sidecar_is_asked(
    client: httpx.AsyncClient,
) -> None:
    five_fields = await client.put(
        "/api/schedules/nightly", json={"job": "heartbeat", "cron": "0 3 * * *"}
    )
    assert five_fields.status_code == 422
    assert "six-field" in five_fields.text
    both = await client.put(
        "/api/schedules/nightly",
        json={"job": "heartbeat", "cron": "@daily", "due_time": "2030-01-01T00:00:00Z"},
    )
    assert both.status_code == 422
    assert (
        await client.put("/api/schedules/bad name!", json={"job": "heartbeat", "cron": "@daily"})
    ).status_code == 422
    unknown = await client.put("/api/schedules/nightly", json={"job": "nope", "cron": "@daily"})
    assert unknown.status_code == 404
    assert (await client.delete("/api/schedules/never-made")).status_code == 404


async def test_a_running_run_is_interrupted_by_cancel(
    client: httpx.AsyncClient, db: Database
) -> None:
    run_id = await trigger(client, "flaky_job", {"key": "cancel-running", "sleep_ms": 30_000})
    await run_reaching(client, run_id, {"running"})

    assert (await client.post(f"/api/runs/{run_id}/cancel")).status_code == 202

    run = await run_reaching(client, run_id, {"cancelled", "succeeded"}, within=10)
    assert run["status"] == "cancelled"
    assert run["error"]["message"] == "cancelled by an operator"
    assert await db["test_completions"].find_one({"_id": "cancel-running"}) is None


async def test_a_run_taken_over_elsewhere_is_abandoned_here(
    capsys: pytest.CaptureFixture[str], client: httpx.AsyncClient, db: Database
) -> None:
    """Another instance claimed the run (this one's lease was thought expired): this instance
    stops working on it at its next renewal, and writes no outcome over the other's.

    `capsys` comes first so that it is in place when `client` sets the app's log sink up."""
    run_id = await trigger(client, "flaky_job", {"key": "taken-over", "sleep_ms": 4_000})
    await run_reaching(client, run_id, {"running"})

    await db["job_runs"].update_one({"_id": ObjectId(run_id)}, {"$set": {"instance": "thief"}})

    seen: list[str] = []

    async def stopped_here() -> bool:
        seen.append(capsys.readouterr().err)
        return any("lease lost" in chunk and run_id in chunk for chunk in seen)

    await eventually(stopped_here, within=10, what="this instance to let the run go")
    run = (await client.get(f"/api/runs/{run_id}")).json()
    assert (run["instance"], run["status"], run["attempts"]) == ("thief", "running", [])
    assert await db["test_completions"].find_one({"_id": "taken-over"}) is None
