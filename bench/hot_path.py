"""The app's own CPU per event, in-process: deliveries as daprd sends them, straight into the
ASGI app (no sidecar, no HTTP server), against the stack's database. No transport, no peer and
no second process share the measure, so a change to the hot path shows in its figure even on a
noisy machine, where `make bench`'s throughput moves by a third from one run to the next.

Three forms: `bulk` (the one-event handler on a bulk-subscribed topic: one bulk delivery of
`--size` entries at a time, as daprd sends them), `batch` (the batch handler, the same way) and
`one` (one event per request, `--size` requests at once). Printed: events/s of this one
pipeline, CPU ms per event of this process (the app and its database client), database requests
per event; `--profile` adds cProfile's functions by own time.

    make bench-hot-path                      # all three forms
    uv run python -m bench.hot_path --form batch --profile
"""

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import uvloop
from asgi_lifespan import LifespanManager
from pymongo import AsyncMongoClient

from app.core.config import Settings
from app.main import create_app
from bench import workers as bench_workers
from bench.database import requests_served
from tests.support import (
    DEVELOPMENT,
    MONGODB_URI,
    unique_database,
    until_started,
    uri_with_database,
)

ASGIApp = Callable[..., Awaitable[None]]
TOPICS = {
    "bulk": bench_workers.BULK_TOPIC,
    "batch": bench_workers.BATCH_TOPIC,
    "one": bench_workers.TOPIC,
}
NO_SIDECAR_PORT = 1


def _cloud_event(topic: str, item_id: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "source": "bench",
        "type": "com.dapr.event.sent",
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "data": {"item_id": item_id},
        "topic": topic,
        "pubsubname": "pubsub",
        "time": "2026-12-07T00:00:00Z",
    }


def _bulk_body(topic: str, ids: list[str]) -> bytes:
    entries = [
        {
            "entryId": str(n),
            "event": _cloud_event(topic, item_id),
            "contentType": "application/cloudevents+json",
        }
        for n, item_id in enumerate(ids)
    ]
    body = {"id": str(uuid.uuid4()), "entries": entries, "pubsubname": "pubsub", "topic": topic}
    return json.dumps(body).encode()


async def _post(app: ASGIApp, path: str, body: bytes, content_type: str) -> bytes:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 18000),
        "state": {},
    }
    sent = False
    answer: list[bytes] = []
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # a client that stays connected
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            answer.append(message.get("body", b""))

    await app(scope, receive, send)
    if status != [200]:
        raise RuntimeError(f"{path}: HTTP {status}: {b''.join(answer)[:300]!r}")
    return b"".join(answer)


async def _deliver_bulk(app: ASGIApp, topic: str, ids: list[str]) -> None:
    answer = json.loads(
        await _post(app, f"/bulk-events/pubsub/{topic}", _bulk_body(topic, ids), "application/json")
    )
    statuses = {entry["status"] for entry in answer.get("statuses", [])}
    if statuses != {"SUCCESS"} or len(answer["statuses"]) != len(ids):
        raise RuntimeError(f"bulk delivery answered {answer}")


async def _deliver_each(app: ASGIApp, topic: str, ids: list[str]) -> None:
    async def one(item_id: str) -> None:
        body = json.dumps(_cloud_event(topic, item_id)).encode()
        answer = await _post(app, f"/events/pubsub/{topic}", body, "application/cloudevents+json")
        if json.loads(answer).get("status") != "SUCCESS":
            raise RuntimeError(f"delivery answered {answer!r}")

    await asyncio.gather(*(one(item_id) for item_id in ids))


async def measure(form: str, events: int, size: int, profile: str | None) -> str:
    database = unique_database("aevatar_hot_path")
    settings = Settings(
        App=DEVELOPMENT,
        ConnectionStrings={"Default": uri_with_database(MONGODB_URI, database)},
        Dapr={"HttpPort": NO_SIDECAR_PORT, "HostActors": False},
        Worker={"Modules": ["bench.workers"]},
        Serilog={"MinimumLevel": {"Default": "Warning"}},
    )
    topic = TOPICS[form]
    deliver = _deliver_each if form == "one" else _deliver_bulk
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGODB_URI, tz_aware=True)
    app = create_app(settings)
    try:
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://worker") as probe:
                await until_started(probe)
            warm = [f"w-{i}" for i in range(size * 20)]
            for start in range(0, len(warm), size):
                await deliver(manager.app, topic, warm[start : start + size])
            ids = [f"b-{i:07d}" for i in range(events)]
            rounds = [ids[start : start + size] for start in range(0, events, size)]
            requests_before = await requests_served(mongo)
            profiler = cProfile.Profile() if profile else None
            sort = profile or "tottime"
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            for chunk in rounds:
                await deliver(manager.app, topic, chunk)
            if profiler:
                profiler.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            requests = await requests_served(mongo) - requests_before
        line = (
            f"{form:6} {events / wall:8.1f} events/s  CPU {cpu / events * 1000:.3f} ms/event  "
            f"{requests / events:.2f} database requests/event"
        )
        if profiler:
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            line += f"  {stats.total_calls / events:.0f} function calls/event (cProfile)\n"  # type: ignore[attr-defined]
            stats.sort_stats(sort).print_stats(40)
            line += out.getvalue()
        return line
    finally:
        await mongo.drop_database(database)
        await mongo.close()


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--form", choices=[*TOPICS, "all"], default="all")
    parser.add_argument("--events", type=int, default=6400)
    parser.add_argument("--size", type=int, default=32, help="entries per bulk delivery")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="tottime",
        choices=["tottime", "cumulative", "ncalls"],
        help="cProfile the measured deliveries; functions by own time (default), cumulative "
        "time or calls",
    )
    args = parser.parse_args(argv)
    for form in TOPICS if args.form == "all" else [args.form]:
        sys.stdout.write(await measure(form, args.events, args.size, args.profile) + "\n")


if __name__ == "__main__":
    uvloop.run(main())
