"""The whole path through the real sidecar: pub/sub events and cron ticks land in MongoDB."""

import asyncio
import itertools
import json
import uuid
from typing import Any

import httpx
import pytest

from app.db.mongo import Database, Document
from app.workers.builtin.domain_events import TOPIC
from tests.e2e.deployment import RunningWorker, dapr_cli
from tests.support import eventually

pytestmark = pytest.mark.e2e


async def test_the_worker_is_ready_behind_its_sidecar(worker: RunningWorker) -> None:
    async with httpx.AsyncClient() as http:
        readiness = await http.get(f"{worker.app_url}/readyz")

        async def subscribed_metadata() -> dict[str, Any] | None:
            metadata: dict[str, Any] = (
                await http.get(f"{worker.sidecar_url}/v1.0/metadata")
            ).json()
            return metadata if metadata.get("subscriptions") else None

        metadata = await eventually(subscribed_metadata, what="daprd to load the subscriptions")

    assert readiness.status_code == 200
    assert readiness.json()["checks"] == {"mongodb": {"status": "ok"}, "sidecar": {"status": "ok"}}
    assert metadata["id"] == "worker"
    subscribed = {(s["pubsubname"], s["topic"]) for s in metadata["subscriptions"]}
    assert ("pubsub", TOPIC) in subscribed
    components = {(c["name"], c["type"]) for c in metadata["components"]}
    assert ("heartbeat-cron", "bindings.cron") in components


async def _stored_event(db: Database, order_id: str) -> Document | None:
    return await db["domain_events"].find_one({"data.orderId": order_id})


async def test_an_event_from_dapr_publish_lands_in_mongodb(
    worker: RunningWorker, e2e_db: Database
) -> None:
    order_id = f"cli-{uuid.uuid4()}"
    publish = await asyncio.create_subprocess_exec(
        dapr_cli(),
        "publish",
        "--publish-app-id",
        "worker",
        "--pubsub",
        "pubsub",
        "--topic",
        TOPIC,
        "--data",
        json.dumps({"orderId": order_id, "amount": 3}),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(publish.communicate(), 30)
    assert publish.returncode == 0, output.decode()

    stored = await eventually(lambda: _stored_event(e2e_db, order_id), what="the stored event")
    assert stored["data"] == {"orderId": order_id, "amount": 3}

    async def succeeded_run() -> Document | None:
        return await e2e_db["job_runs"].find_one(
            {"trigger.event_id": stored["_id"], "status": "succeeded"}
        )

    run = await eventually(succeeded_run, what="the event's run to succeed")
    assert run["trace_id"], "daprd's traceparent reaches the run"


async def test_an_event_from_the_sidecar_publish_api_lands_in_mongodb(
    worker: RunningWorker, e2e_db: Database
) -> None:
    order_id = f"http-{uuid.uuid4()}"
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{worker.sidecar_url}/v1.0/publish/pubsub/{TOPIC}", json={"orderId": order_id}
        )
    assert response.status_code == 204

    stored = await eventually(lambda: _stored_event(e2e_db, order_id), what="the stored event")
    assert stored["topic"] == TOPIC


async def _publish_cloud_event(worker: RunningWorker, event: dict[str, Any]) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{worker.sidecar_url}/v1.0/publish/pubsub/{TOPIC}",
            content=json.dumps(event),
            headers={"content-type": "application/cloudevents+json"},
        )
    assert response.status_code == 204


async def test_the_same_cloud_event_published_twice_is_applied_once(
    worker: RunningWorker, e2e_db: Database
) -> None:
    event = {
        "id": f"dup-{uuid.uuid4()}",
        "source": "e2e",
        "type": "order.placed",
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "data": {"orderId": "dup"},
    }
    await _publish_cloud_event(worker, event)
    await _publish_cloud_event(worker, event)

    async def refused_redelivery() -> bool:
        return any(
            str(line.get("message", "")).startswith("occurrence already has a run")
            and line.get("dedupe_key") == f"event:{event['id']}"
            for line in worker.app_log_lines()
        )

    await eventually(refused_redelivery, what="the second delivery, refused")

    async def succeeded_runs() -> list[Document] | None:
        runs = await e2e_db["job_runs"].find({"trigger.event_id": event["id"]}).to_list()
        return runs if any(run["status"] == "succeeded" for run in runs) else None

    runs = await eventually(succeeded_runs, what="the event's run to succeed")
    assert len(runs) == 1
    assert await e2e_db["domain_events"].count_documents({"_id": event["id"]}) == 1


async def test_an_invalid_payload_is_dropped_with_its_reason_in_the_history(
    worker: RunningWorker, e2e_db: Database
) -> None:
    event_id = f"bad-{uuid.uuid4()}"
    await _publish_cloud_event(
        worker,
        {
            "id": event_id,
            "source": "e2e",
            "type": "order.placed",
            "specversion": "1.0",
            "datacontenttype": "application/json",
            "data": ["not", "an", "object"],
        },
    )

    async def dead_run() -> Document | None:
        return await e2e_db["job_runs"].find_one({"trigger.event_id": event_id})

    run = await eventually(dead_run, what="the dead run")
    assert run["status"] == "dead"
    assert run["error"]["type"] == "ValidationError"
    assert await e2e_db["domain_events"].count_documents({"_id": event_id}) == 0


async def test_cron_ticks_leave_run_documents_without_any_action(
    worker: RunningWorker, e2e_db: Database
) -> None:
    async def three_ticks() -> list[Document] | None:
        query = {"job": "heartbeat", "status": "succeeded"}
        runs = await e2e_db["job_runs"].find(query).to_list()
        return runs if len(runs) >= 3 else None

    runs = await eventually(three_ticks, within=30, what="three heartbeat runs")
    failed = {"job": "heartbeat", "status": {"$in": ["failed", "dead"]}}
    assert await e2e_db["job_runs"].count_documents(failed) == 0
    ticks = sorted(run["trigger"]["tick"] for run in runs)
    assert len(set(ticks)) == len(ticks)
    assert all(later > earlier for earlier, later in itertools.pairwise(ticks))
