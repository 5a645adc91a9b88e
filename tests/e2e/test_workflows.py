"""Workflows on Dapr Workflow, on the real stack: a workflow run's steps are child runs in the
history; a fan-out of 100 survives its app SIGKILLed mid-way, with each step run once; a
fan-out survives its sidecar SIGKILLed and restarted mid-way (the app's workflow worker
reconnects when its instance stalls); a workflow waiting for an approval survives a restart of
its app and its sidecar and completes when the approval is raised through the API; a failed
step is caught and compensated; an operator suspends, resumes, purges and re-runs an instance
through the API; CloudEvents, a cron binding's ticks and Jobs API schedules start workflows."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from app.db.mongo import Database
from tests.e2e.deployment import (
    Ports,
    RunningWorker,
    cron_binding,
    database_of,
    empty_streams,
    prepare_worker,
    unacknowledged,
)
from tests.e2e.faults import FaultInjector, restart_stack_service
from tests.e2e.workflow_instances import instance_reaching, instance_status
from tests.support import eventually, run_reaching, trigger, unique_database, until_started
from tests.workers import WORKFLOW_FIXES, WORKFLOW_PIECES, WORKFLOW_TICK_BINDING, WORKFLOW_TOPIC

pytestmark = pytest.mark.e2e

WORKFLOW_PORTS = Ports(app=18700, http=14200, grpc=15701, metrics=19790)
FAN_OUT = 100
MAX_IN_FLIGHT = 8


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
        resources=[cron_binding(tmp / "components", WORKFLOW_TICK_BINDING, "@every 5s")],
        # Fewer slots than workflows at once in one test: a workflow's run waits for steps that
        # need slots of their own.
        env={"Worker__MaxInFlight": str(MAX_IN_FLIGHT)},
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
        # What it published would reach the next deployment's new consumer group.
        empty_streams([WORKFLOW_TOPIC])


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


async def ended_after_killing(
    worker: RunningWorker, faults: FaultInjector, run_id: str, which: str, *, within: float
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """SIGKILLs the app or the sidecar of instance 0 and starts it again; the run once it has
    ended, and its steps."""
    if which == "app":
        faults.restart_app(faults.kill_app(0), 0)
    else:
        faults.restart_sidecar(faults.kill_sidecar(0), 0)
    async with worker.api() as api:
        await until_started(api)
        run = await run_reaching(api, run_id, {"succeeded", "dead", "cancelled"}, within=within)
        return run, await steps_of(api, run_id)


async def test_a_fan_out_completes_after_its_app_is_killed_and_applies_each_step_once(
    flows: tuple[RunningWorker, Database, FaultInjector],
) -> None:
    worker, db, faults = flows
    async with worker.api() as api:
        run_id = await trigger(api, "fan_out_workflow", {"width": FAN_OUT, "delay_ms": 1500})
        await steps_reaching(api, run_id, 10, {"running", "succeeded"}, within=120)
    run, steps = await ended_after_killing(worker, faults, run_id, "app", within=180)

    assert run["status"] == "succeeded", run["error"]
    assert run["attempt"] >= 2, "the killed app's attempt was lost; another took the instance up"
    assert run["result"]["output"]["indexes"] == list(range(1, FAN_OUT + 1))
    await assert_each_step_once(db, steps, FAN_OUT)
    redone = [s for s in steps if s["refusals"] or s["attempt"] > 1]
    assert redone, "some step was running when the app died, and was taken up again"


async def test_an_approval_survives_a_restart_of_every_process_and_completes_when_raised(
    flows: tuple[RunningWorker, Database, FaultInjector],
) -> None:
    worker, db, _ = flows
    async with worker.api() as api:
        run_id = await trigger(api, "approval_workflow")
        await run_reaching(api, run_id, {"running"}, within=30)
    await instance_reaching(worker, run_id, "RUNNING")
    worker.stop()
    # Every process: the stack's too (placement, scheduler, Redis with the actor state, the
    # database), each stopped and started again while the worker is down.
    for service in ("placement", "scheduler", "redis", "secantusdb"):
        restart_stack_service(service)
    worker.start()
    async with worker.api() as api:
        await until_started(api)
        assert (await api.get(f"/api/runs/{run_id}")).json()["status"] in {"running", "pending"}

        async def raised_once() -> httpx.Response | None:
            """A 503 while the restarted sidecar places the workflow actors: again."""
            response = await api.post(
                f"/api/runs/{run_id}/events/approval", json={"by": "ops", "index": 7}
            )
            return None if response.status_code == 503 else response

        raised = await eventually(raised_once, within=120, interval=1, what="the approval")
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
    # python-sdk #797 (an activity's retry policy ignored inside try/except) does not reach us:
    # a step's retries are its job's, and the doomed step had both of its attempts.
    assert [a["status"] for a in steps[0]["attempts"]] == ["failed", "dead"]
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


async def test_an_operator_suspends_resumes_and_purges_a_workflow_through_the_api(
    flows: tuple[RunningWorker, Database, FaultInjector],
) -> None:
    worker, db, _ = flows
    async with worker.api() as api:
        run_id = await trigger(api, "approval_workflow")
        await instance_reaching(worker, run_id, "RUNNING")
        waiting = (await api.get(f"/api/runs/{run_id}/instance")).json()
        not_suspended = await api.post(f"/api/runs/{run_id}/resume")
        suspended = await api.post(f"/api/runs/{run_id}/suspend")
        assert suspended.status_code == 202, suspended.text
        await instance_reaching(worker, run_id, "SUSPENDED")
        while_suspended = (await api.get(f"/api/runs/{run_id}")).json()
        # Raised while suspended, the approval waits for the instance to be resumed.
        raised = await api.post(
            f"/api/runs/{run_id}/events/approval", json={"by": "ops", "index": 9}
        )
        assert raised.status_code == 202, raised.text
        still = await instance_status(worker, run_id)
        steps_while_suspended = await steps_of(api, run_id)
        too_early = await api.post(f"/api/runs/{run_id}/purge")
        resumed = await api.post(f"/api/runs/{run_id}/resume")
        assert resumed.status_code == 202, resumed.text
        run = await run_reaching(api, run_id, {"succeeded", "dead", "cancelled"}, within=60)
        purged = await api.post(f"/api/runs/{run_id}/purge")
        assert purged.status_code == 202, purged.text
        after = (await api.get(f"/api/runs/{run_id}")).json()
        gone = await instance_status(worker, run_id)
        no_instance = await api.get(f"/api/runs/{run_id}/instance")
        steps = await steps_of(api, run_id)

    assert waiting["status"] == "RUNNING"
    assert waiting["waiting_on"].startswith("waiting for event 'approval', at most until")
    assert no_instance.status_code == 404
    assert not_suspended.status_code == 409, "a running instance is not suspended"
    assert while_suspended["status"] == "running"
    assert while_suspended["suspended_at"] is not None
    assert still == "SUSPENDED"
    assert steps_while_suspended == []
    assert too_early.status_code == 409, "a running instance is not purged: cancel it first"
    assert run["status"] == "succeeded", run["error"]
    assert run["suspended_at"] is None
    assert run["result"]["output"] == {"approved_by": "ops", "applied": 9}
    assert after["purged_at"] is not None
    assert gone is None, "the sidecar no longer knows the purged instance"
    assert [s["status"] for s in steps] == ["succeeded"], "the history keeps the steps"
    audited = [e["action"] async for e in db["audit_log"].find({"target": run_id}).sort("at", 1)]
    assert audited == ["suspend", "raise-event", "resume", "purge"]


async def rerun_after_fixing(
    api: httpx.AsyncClient, db: Database, failed: dict[str, Any], verb: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Fixes the cause of a failed `blocked_workflow` run, re-runs it with `verb` (`retry` or
    `rerun-from-failed-step`); the new run once finished, and its steps."""
    await db[WORKFLOW_FIXES].insert_one({"_id": failed["payload"]["index"], "fixed_by": "ops"})
    answered = await api.post(f"/api/runs/{failed['id']}/{verb}")
    assert answered.status_code == 202, answered.text
    rerun_id = answered.json()["run_id"]
    rerun = await run_reaching(api, rerun_id, {"succeeded", "dead", "cancelled"}, within=60)
    return rerun, await steps_of(api, rerun_id)


async def test_a_failed_workflow_is_rerun_from_the_start_with_its_input(
    flows: tuple[RunningWorker, Database, FaultInjector],
) -> None:
    worker, db, _ = flows
    async with worker.api() as api:
        failed, failed_steps = await finished_with_steps(api, "blocked_workflow", {"index": 40})
        rerun, rerun_steps = await rerun_after_fixing(api, db, failed, "retry")

    assert failed["status"] == "dead"
    assert "blocked" in failed["error"]["message"]
    assert [(s["step"], s["status"]) for s in failed_steps] == [
        ("before", "succeeded"),
        ("blocked", "dead"),
    ]
    assert rerun["id"] != failed["id"], "a new run, and so a new instance"
    assert rerun["trigger"] == {"type": "manual", "retry_of": failed["id"]}
    assert rerun["payload"] == {"index": 40}
    assert rerun["status"] == "succeeded", rerun["error"]
    assert rerun["result"]["output"] == {"done": 40}
    assert [(s["step"], s["status"]) for s in rerun_steps] == [
        ("before", "succeeded"),
        ("blocked", "succeeded"),
    ], "from the start: every step again"


async def test_a_failed_workflow_is_rerun_from_its_failed_step_without_the_steps_before(
    flows: tuple[RunningWorker, Database, FaultInjector],
) -> None:
    worker, db, _ = flows
    async with worker.api() as api:
        failed, _ = await finished_with_steps(api, "blocked_workflow", {"index": 42})
        rerun, rerun_steps = await rerun_after_fixing(api, db, failed, "rerun-from-failed-step")
        not_failed = await api.post(f"/api/runs/{rerun['id']}/rerun-from-failed-step")

    assert failed["status"] == "dead"
    assert rerun["trigger"] == {"type": "manual", "retry_of": failed["id"], "from_step": "blocked"}
    assert rerun["status"] == "succeeded", rerun["error"]
    assert rerun["result"]["output"] == {"done": 42}
    assert [(s["step"], s["status"]) for s in rerun_steps] == [("blocked", "succeeded")]
    assert await db[WORKFLOW_PIECES].count_documents({"index": 42}) == 1, "'before' ran once"
    assert not_failed.status_code == 409, "only a failed workflow run is re-run from a step"
    audited = await db["audit_log"].find_one(
        {"action": "rerun-from-failed-step", "target": failed["id"]}
    )
    assert audited is not None
    assert rerun["id"] in audited["run_ids"]


async def test_a_workflow_starts_from_its_cron_bindings_ticks(
    flows: tuple[RunningWorker, Database, FaultInjector],
) -> None:
    worker, db, _ = flows

    async def two_ticks_done() -> list[dict[str, Any]] | None:
        runs = await db["job_runs"].find({"job": "ticking_workflow"}).to_list()
        done = [r for r in runs if r["status"] == "succeeded"]
        return runs if len(done) >= 2 else None

    try:
        runs = await eventually(two_ticks_done, within=60, what="two ticks' workflows done")
    finally:
        # Its binding fires for the module's whole life: a workflow every 5 s would load the
        # tests after this one (the app killed mid-chain restarts under them).
        async with worker.api() as api:
            assert (await api.post("/api/jobs/ticking_workflow/pause")).status_code == 204
    ticks = [r["trigger"]["tick"] for r in runs]
    done = [r for r in runs if r["status"] == "succeeded"]
    steps = await db["job_runs"].find({"parent_run_id": str(done[0]["_id"])}).to_list()

    assert {r["trigger"]["type"] for r in runs} == {"cron"}
    assert len(ticks) == len(set(ticks)), "one workflow per tick"
    assert done[0]["result"]["output"] == {"doubled": 42}
    assert [(s["step"], s["status"]) for s in steps] == [("double", "succeeded")]


async def publish_piece(worker: RunningWorker, event_id: str, data: dict[str, Any]) -> None:
    """A CloudEvent of our own id on the workflow's topic, through the sidecar."""
    event = {
        "specversion": "1.0",
        "id": event_id,
        "source": "e2e",
        "type": "piece.requested",
        "datacontenttype": "application/json",
        "data": data,
    }
    async with httpx.AsyncClient(base_url=worker.sidecar_url, timeout=10) as sidecar:
        published = await sidecar.post(
            f"/v1.0/publish/pubsub/{WORKFLOW_TOPIC}",
            json=event,
            headers={"content-type": "application/cloudevents+json"},
        )
    assert published.status_code == 204, published.text


async def test_a_workflow_starts_from_a_cloudevent_once_and_from_a_jobs_api_schedule(
    flows: tuple[RunningWorker, Database, FaultInjector],
) -> None:
    worker, db, _ = flows
    event_id = f"flow-{uuid.uuid4().hex[:8]}"
    for _ in range(2):  # the same CloudEvent twice: one run, one instance
        await publish_piece(worker, event_id, {"index": 51})
    async with worker.api() as api:

        async def event_run() -> dict[str, Any] | None:
            runs = (await api.get("/api/runs", params={"job": "event_workflow"})).json()["items"]
            mine = [r for r in runs if r["trigger"].get("event_id") == event_id]
            return mine[0] if mine and mine[0]["status"] == "succeeded" else None

        from_event = await eventually(event_run, within=60, what="the event's workflow run")
        # A workflow that lasts: its event is acknowledged once its run is stored, not held.
        lasting_id = f"flow-{uuid.uuid4().hex[:8]}"
        await publish_piece(worker, lasting_id, {"index": 53, "delay_ms": 15_000})

        async def acknowledged_while_running() -> bool | None:
            held = unacknowledged(WORKFLOW_TOPIC, worker.app_id)  # first: then the run's status
            runs = (await api.get("/api/runs", params={"job": "event_workflow"})).json()["items"]
            mine = [r for r in runs if r["trigger"].get("event_id") == lasting_id]
            return (bool(mine) and mine[0]["status"] == "running" and held == 0) or None

        await eventually(acknowledged_while_running, within=30, what="the event acknowledged")
        soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
        scheduled = await api.put(
            "/api/schedules/flow-once",
            json={
                "job": "event_workflow",
                "due_time": soon,
                "payload": {"index": 52},
            },
        )
        assert scheduled.status_code in (200, 201), scheduled.text

        async def scheduled_run() -> dict[str, Any] | None:
            runs = (await api.get("/api/runs", params={"job": "event_workflow"})).json()["items"]
            mine = [r for r in runs if r["trigger"]["type"] == "schedule"]
            return mine[0] if mine and mine[0]["status"] == "succeeded" else None

        from_schedule = await eventually(scheduled_run, within=60, what="the scheduled run")
        all_runs = (await api.get("/api/runs", params={"job": "event_workflow"})).json()["items"]
        event_steps = await steps_of(api, from_event["id"])

    assert from_event["kind"] == "workflow"
    assert from_event["result"]["output"] == {"applied": 51, "doubled": 102}
    assert [r["trigger"].get("event_id") for r in all_runs].count(event_id) == 1
    assert [(s["step"], s["job"]) for s in event_steps] == [
        ("apply", "workflow_piece"),
        ("double", "double_piece"),
    ], "the plain activity's call is a child run too"
    assert from_schedule["trigger"]["schedule"] == "flow-once"
    assert from_schedule["result"]["output"] == {"applied": 52, "doubled": 104}
    assert await db[WORKFLOW_PIECES].count_documents({"index": {"$in": [51, 52]}}) == 2


async def test_a_fan_out_completes_after_its_sidecar_is_killed_and_restarted(
    flows: tuple[RunningWorker, Database, FaultInjector],
) -> None:
    worker, db, faults = flows
    width = 20
    async with worker.api() as api:
        run_id = await trigger(api, "fan_out_workflow", {"width": width, "delay_ms": 1500})
        await steps_reaching(api, run_id, 5, {"running", "succeeded"}, within=120)
    run, steps = await ended_after_killing(worker, faults, run_id, "sidecar", within=240)

    assert run["status"] == "succeeded", run["error"]
    assert run["result"]["output"]["indexes"] == list(range(1, width + 1))
    await assert_each_step_once(db, steps, width)


async def test_more_workflows_at_once_than_runs_in_flight_all_complete(
    flows: tuple[RunningWorker, Database, FaultInjector],
) -> None:
    """Each workflow's run waits for its instance while its steps need slots: counted against
    `Worker:MaxInFlight`, twice as many workflows as slots held every slot and no step ran."""
    worker, _, _ = flows
    async with worker.api() as api:
        run_ids = [
            await trigger(api, "fan_out_workflow", {"width": 2, "delay_ms": 100})
            for _ in range(2 * MAX_IN_FLIGHT)
        ]
        runs = [await run_reaching(api, r, {"succeeded", "dead"}, within=90) for r in run_ids]

    assert [r["status"] for r in runs] == ["succeeded"] * len(run_ids)


async def test_a_chain_completes_after_its_app_is_killed_mid_way_and_applies_each_step_once(
    flows: tuple[RunningWorker, Database, FaultInjector],
) -> None:
    worker, db, faults = flows
    length = 6
    async with worker.api() as api:
        run_id = await trigger(api, "chain_workflow", {"length": length, "delay_ms": 1000})
        await steps_reaching(api, run_id, 2, {"succeeded"})
    run, steps = await ended_after_killing(worker, faults, run_id, "app", within=180)

    assert run["status"] == "succeeded", run["error"]
    assert run["result"]["output"]["indexes"] == list(range(length))
    assert [s["step"] for s in steps] == [f"link {n}" for n in range(length)], "in turn, once"
    applied = [doc async for doc in db[WORKFLOW_PIECES].find({})]
    assert sorted(doc["index"] for doc in applied) == list(range(length)), "each applied once"
