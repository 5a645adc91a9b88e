"""Publish-to-applied latency at a fixed offered rate (open loop: the publisher keeps its pace
whatever the worker does), measured through the real sidecar on one machine's clock."""

import asyncio
import statistics
import time
import uuid
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from bench.workers import TOPIC
from tests.e2e.deployment import RunningWorker
from tests.support import eventually, item_event


async def publish_to_applied_ms(
    deployment: RunningWorker,
    mongo: AsyncMongoClient[dict[str, Any]],
    *,
    rate: float,
    seconds: float,
    topic: str = TOPIC,
) -> dict[str, float]:
    """p50 and p99 of (the run's finished_at - the moment its event was published), in ms."""
    prefix = f"lat-{uuid.uuid4().hex[:6]}"
    sent: dict[str, float] = {}
    calls: list[asyncio.Task[httpx.Response]] = []
    async with httpx.AsyncClient(timeout=30) as http:
        began = time.monotonic()
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, began + n / rate - time.monotonic()))
            item_id = f"{prefix}-{n:06d}"
            sent[item_id] = time.time()
            calls.append(
                asyncio.create_task(
                    http.post(
                        f"{deployment.sidecar_url}/v1.0/publish/pubsub/{topic}",
                        json=item_event(item_id, source="bench"),
                        headers={"content-type": "application/cloudevents+json"},
                    )
                )
            )
        responses = await asyncio.gather(*calls)
    assert all(r.status_code == 204 for r in responses), "a publish was refused"
    runs = mongo[deployment.database]["job_runs"]
    query = {"trigger.event_id": {"$regex": f"^{prefix}-"}, "status": "succeeded"}

    async def all_finished() -> bool:
        return await runs.count_documents(query) >= len(sent)

    await eventually(all_finished, within=600, interval=0.5, what="every latency probe applied")
    latencies = [
        (run["finished_at"].timestamp() - sent[run["trigger"]["event_id"]]) * 1000
        async for run in runs.find(query, {"finished_at": 1, "trigger.event_id": 1})
    ]
    centiles = statistics.quantiles(latencies, n=100)
    return {"p50": round(centiles[49], 1), "p99": round(centiles[98], 1)}
