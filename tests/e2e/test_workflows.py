"""Workflows on Dapr Workflow, on the real stack: a workflow run's steps are child runs in the
history; a fan-out of 100 survives its app SIGKILLed mid-way, with each step run once; a
workflow waiting for an approval survives a restart of its app and its sidecar and completes
when the approval is raised through the API; a failed step is caught and compensated. (A
sidecar SIGKILLed mid-workflow is not here yet: docs/workflows.md says what fails.)"""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from app.db.mongo import Database
from tests.e2e.deployment import Ports, RunningWorker, database_of, prepare_worker
from tests.e2e.faults import FaultInjector
from tests.support import eventually, run_reaching, trigger, unique_database, until_started
from tests.workers import WORKFLOW_PIECES

pytestmark = pytest.mark.e2e

WORKFLOW_PORTS = Ports(app=18700, http=14200, grpc=15701, metrics=19790)
FAN_OUT = 100


@pytest.fixture
async def flows(
    tmp_path_factory: pytest.TempPathFactory, mongo: AsyncMongoClient[dict[str, Any]]
) -> AsyncIterator[tuple[RunningWorker, Database, FaultInjector]]:
    tmp = tmp_path_factory.mktemp("workflows")
    running = prepare_worker(
        tmp,
        app_id="worker-flow",
        ports=WORKFLOW_PORTS,
        database=unique_database("aevatar_flow"),
        env={},
    )
    # A Dapr namespace per test: the workflow actors (and so the instances, their reminders and
    # their state) are per namespace, and an instance left behind by an earlier test must not
    # reach this one's app.
    running.namespace = f"e2e-flow-{uuid.uuid4().hex[:8]}"
    faults = FaultInjector(running, tmp / "restarted.log")
    try:
        async with database_of(running, mongo) as db:
            running.start()
            yield running, db, faults
    finally:
        faults.stop_all()
        running.stop()


async def steps_of(api: httpx.AsyncClient, run_id: str) -> list[dict[str, Any]]:
    response = await api.get("/api/runs", params={"parent": run_id, "limit": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def steps_reaching(
    api: httpx.AsyncClient, run_id: str, count: int, statuses: set[str], within: float = 60
) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        steps = await steps_of(api, run_id)
        reached = [s for s in steps if s["status"] in statuses]
        return steps if len(reached) >= count else None

    return await eventually(probe, within=within, what=f"{count} steps of {run_id} {statuses}")


async def finished_with_steps(
    api: httpx.AsyncClient, job: str, payload: Any = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Triggers a workflow; its run once finished, and its steps."""
    run_id = await trigger(api, job, payload)
    run = await run_reaching(api, run_id, {"succeeded", "dead", "cancelled"}, within=60)
    return run, await steps_of(api, run_id)


async def test_the_built_in_workflow_records_each_step_as_a_child_run(
    flows: tuple[RunningWorker, Database, FaultInjector],
) -> None:
    worker, _, _ = flows
    async with worker.api() as api:
        run, steps = await finished_with_steps(api, "ReportsWorkflow")
    run_id = run["id"]

    assert run["status"] == "succeeded", run["error"]
    assert run["kind"] == "workflow"
    assert [s["job"] for s in steps] == ["recompute_customer_summaries"] + [
        "ScheduledReportWorker"
    ] * 3
    assert {s["parent_run_id"] for s in steps} == {run_id}
    assert all(s["status"] == "succeeded" and s["trigger"]["type"] == "workflow" for s in steps)
    assert len({s["step"] for s in steps}) == 4, "each step has a name of its own"
    reports = run["result"]["output"]["reports"]
    # The fan-out's steps are made in the order their activities arrive, not in list order.
    assert sorted(r["report_id"] for r in reports) == sorted(
        s["result"]["report_id"] for s in steps[1:]
    )


async def assert_each_step_once(db: Database, steps: list[dict[str, Any]], width: int) -> None:
    assert len(steps) == width + 1, "one run per step, however often Dapr ran its activity"
    assert all(s["status"] == "succeeded" for s in steps)
    applied = [doc async for doc in db[WORKFLOW_PIECES].find({})]
    assert sorted(doc["index"] for doc in applied) == list(range(width + 1))
    assert {doc["_id"] for doc in applied} == {s["id"] for s in steps}


async def test_a_fan_out_completes_after_its_app_is_killed_and_applies_each_step_once(
    flows: tuple[RunningWorker, Database, FaultInjector],
) -> None:
    worker, db, faults = flows
    async with worker.api() as api:
        run_id = await trigger(api, "fan_out_workflow", {"width": FAN_OUT, "delay_ms": 1500})
        await steps_reaching(api, run_id, 10, {"running", "succeeded"})
    image = faults.kill_app(0)
    faults.restart_app(image, 0)
    async with worker.api() as api:
        await until_started(api)
        run = await run_reaching(api, run_id, {"succeeded", "dead"}, within=180)
        steps = await steps_of(api, run_id)

    assert run["status"] == "succeeded", run["error"]
    assert run["attempt"] >= 2, "the killed app's attempt was lost; another took the instance up"
    assert run["result"]["output"]["indexes"] == list(range(1, FAN_OUT + 1))
    await assert_each_step_once(db, steps, FAN_OUT)
    redone = [s for s in steps if s["refusals"] or s["attempt"] > 1]
    assert redone, "some step was running when the app died, and was taken up again"


async def instance_status(worker: RunningWorker, run_id: str) -> str | None:
    """The workflow instance's status as the sidecar's workflow API tells it."""
    async with httpx.AsyncClient(base_url=worker.sidecar_url, timeout=10) as sidecar:
        response = await sidecar.get(f"/v1.0/workflows/dapr/{run_id}")
    if response.status_code != 200:
        return None
    status: str = response.json().get("runtimeStatus", "")
    return status


async def instance_reaching(worker: RunningWorker, run_id: str, status: str) -> None:
    async def reached() -> bool | None:
        return await instance_status(worker, run_id) == status or None

    await eventually(reached, within=60, what=f"workflow instance {run_id} {status}")


async def test_an_approval_survives_a_restart_and_completes_when_raised_through_the_api(
    flows: tuple[RunningWorker, Database, FaultInjector],
) -> None:
    worker, db, _ = flows
    async with worker.api() as api:
        run_id = await trigger(api, "approval_workflow")
        await run_reaching(api, run_id, {"running"}, within=30)
    await instance_reaching(worker, run_id, "RUNNING")
    worker.stop()
    worker.start()
    async with worker.api() as api:
        await until_started(api)
        assert (await api.get(f"/api/runs/{run_id}")).json()["status"] in {"running", "pending"}
        raised = await api.post(
            f"/api/runs/{run_id}/events/approval", json={"by": "ops", "index": 7}
        )
        assert raised.status_code == 202, raised.text
        run = await run_reaching(api, run_id, {"succeeded", "dead"}, within=60)
        again = await api.post(f"/api/runs/{run_id}/events/approval", json={"by": "late"})
        steps = await steps_of(api, run_id)

    assert run["status"] == "succeeded", run["error"]
    assert run["result"]["output"] == {"approved_by": "ops", "applied": 7}
    assert again.status_code == 409, "a finished workflow takes no more events"
    assert [(s["job"], s["status"]) for s in steps] == [("workflow_piece", "succeeded")]
    assert await db[WORKFLOW_PIECES].count_documents({"index": 7}) == 1
    audited = await db["audit_log"].find_one({"action": "raise-event", "target": run_id})
    assert audited is not None
    assert audited["who"] == "api"


async def test_a_failed_step_is_caught_and_compensated(
    flows: tuple[RunningWorker, Database, FaultInjector],
) -> None:
    worker, _, _ = flows
    async with worker.api() as api:
        run, steps = await finished_with_steps(api, "compensating_workflow")
        not_a_workflow = await trigger(api, "greeting_job")
        refused = await api.post(f"/api/runs/{not_a_workflow}/events/approval", json={})

    assert run["status"] == "succeeded", run["error"]
    assert run["result"]["output"]["compensated"] == 2
    assert "fails, as planned" in run["result"]["output"]["because"]
    assert [(s["step"], s["status"]) for s in steps] == [
        ("doomed", "dead"),
        ("compensation", "succeeded"),
    ]
    assert refused.status_code == 409


async def test_cancelling_a_workflow_run_terminates_its_instance(
    flows: tuple[RunningWorker, Database, FaultInjector],
) -> None:
    worker, _, _ = flows
    async with worker.api() as api:
        run_id = await trigger(api, "approval_workflow")
        await instance_reaching(worker, run_id, "RUNNING")
        cancelled = await api.post(f"/api/runs/{run_id}/cancel")
        assert cancelled.status_code == 202, cancelled.text
        run = await run_reaching(api, run_id, {"cancelled", "succeeded", "dead"}, within=60)

    assert run["status"] == "cancelled"
    await instance_reaching(worker, run_id, "TERMINATED")
