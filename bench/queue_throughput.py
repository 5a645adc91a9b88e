"""Queue throughput: work items applied per second by 1 instance and by 3 of ours, and by
Dramatiq's and Taskiq's ordinary workers doing the same work, side by side in one run.

    make bench        (or: make up && .venv/bin/python -m bench.queue_throughput --events 2000)
    make bench PUBSUB=kafka     (ours on Kafka, and once on Redis streams, beside the peers:
                                 bench/results/<date>-kafka.json)

Ours: each configuration is a fresh deployment (the run file of stack/scale.py, app id
`worker-bench`, a database of its own, the engine's default lease and poll settings); the events
are bulk-published to `bench-items` through the sidecars, and the clock runs from the first
publish until every item is in `bench_items` (bench/workers.py: one insert per item). Peers:
one insert per task into the same database server, through the same Redis. CPU per event comes
from /proc for each group of processes (our apps, our daprds, a peer's worker, the database
server) over the measured window. The figures are written to bench/results/<date>.json.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from pymongo import AsyncMongoClient

from bench import workers as bench_workers
from bench.chart import draw
from bench.completion import all_stored
from bench.cpu import CpuMeter, database_pid, resident_mb
from bench.cron_latency import tick_to_start_ms
from bench.database import requests_served
from bench.database_server import PYTHON_SERVER, database_server
from bench.latency import publish_to_applied_ms
from bench.peers.run import measure_peer
from bench.profile import Profile, sample
from bench.result import Result
from stack.scale import pubsub_of_environment
from tests.e2e.deployment import (
    TEST_TOPICS,
    Ports,
    _pids_listening,
    empty_streams,
    prepare_worker,
)
from tests.support import MONGODB_URI, unique_database

PORTS = Ports(app=18500, http=13900, grpc=15501, metrics=19600)
BATCH = 250
RESULTS = Path(__file__).parent / "results"
OFFERED_RATE = 200.0


# The handler the items go to: (topic, collection, what the result's name adds).
HANDLERS = {
    "one": (bench_workers.TOPIC, bench_workers.COLLECTION, ""),
    "bulk": (bench_workers.BULK_TOPIC, bench_workers.BULK_COLLECTION, ", bulk delivery"),
    "batch": (bench_workers.BATCH_TOPIC, bench_workers.BATCH_COLLECTION, ", batch handler"),
    "transactional": (
        bench_workers.TRANSACTIONAL_TOPIC,
        bench_workers.TRANSACTIONAL_COLLECTION,
        ", transactional",
    ),
    "limited": (bench_workers.LIMITED_TOPIC, bench_workers.LIMITED_COLLECTION, ", max_running"),
}


async def measure(
    instances: int,
    events: int,
    tmp: Path,
    *,
    handler: str = "one",
    profile_seconds: float = 0,
    broker: str = "redis",
) -> tuple[Result, list[Profile]]:
    """`handler`: the one-event handler (on a topic delivered one event per request, or on a
    bulk-subscribed one: `bulk`), the batch handler (one bulk insert per call, its topic
    bulk-subscribed), or the one-event handler with `transactional=True`, or with
    `max_running` (never reached).
    `broker`: the event bus its `pubsub` runs on (Redis streams or Kafka)."""
    topic, collection, suffix = HANDLERS[handler]
    if broker != "redis":
        suffix += f", on {broker.capitalize()}"
    deployment = prepare_worker(
        tmp,
        app_id=f"worker-bench-{instances}",
        ports=PORTS,
        database=unique_database("aevatar_bench"),
        instances=instances,
        resources=[Path(__file__).parent / "components"],
        env={
            "Serilog__MinimumLevel__Default": "Warning",
            "Worker__LeaseSeconds": "15",
            "Worker__PollIntervalSeconds": "0.5",
            "Worker__Modules": '["tests.workers", "bench.workers"]',
        },
        broker=broker,
    )
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGODB_URI, tz_aware=True)
    # Every topic the app subscribes to: a new consumer group reads a stream from its start, and
    # would take what an earlier configuration, or the e2e suite (thousands of work items after
    # its fault suite), left there.
    empty_streams([*TEST_TOPICS, *(topic for topic, _, _ in HANDLERS.values())], broker=broker)
    await asyncio.to_thread(deployment.start)
    try:
        ports = range(instances)
        meter = CpuMeter(
            {
                "app": [p for n in ports for p in _pids_listening(deployment.app_port(n))],
                "daprd": [p for n in ports for p in _pids_listening(deployment.ports.http + n)],
                "database": [database_pid()],
            }
        )
        ids = [f"b-{i:06d}" for i in range(events)]
        requests_before = await requests_served(mongo)
        meter.start()
        profiling = asyncio.create_task(
            sample(
                {"worker app": meter.groups["app"][0], "database server": database_pid()},
                profile_seconds,
                tmp,
            )
            if profile_seconds
            else _nothing()
        )
        began = datetime.now(UTC)
        started = time.perf_counter()
        async with httpx.AsyncClient(timeout=30) as http:
            for start in range(0, events, BATCH):
                entries = [
                    {"entryId": i, "event": {"item_id": i}, "contentType": "application/json"}
                    for i in ids[start : start + BATCH]
                ]
                sidecar = deployment.sidecar_url_of(start // BATCH % instances)
                response = await http.post(
                    f"{sidecar}/v1.0-alpha1/publish/bulk/pubsub/{topic}", json=entries
                )
                response.raise_for_status()
        items = mongo[deployment.database][collection]
        await all_stored(items, last_id=ids[-1], expected=events)
        elapsed = time.perf_counter() - started
        meter.stop()
        requests = await requests_served(mongo) - requests_before
        cron = await tick_to_start_ms(mongo[deployment.database], since=began)
        latency = (
            await publish_to_applied_ms(
                deployment, mongo, rate=OFFERED_RATE, seconds=10, topic=topic
            )
            if instances == 1 and handler in ("one", "bulk")
            else {}
        )
        name = f"aevatar-worker, {instances} instance{'s' if instances > 1 else ''}{suffix}"
        result = Result(
            name,
            events / elapsed,
            meter.ms_per_event(events),
            round(requests / events, 2),
            latency_ms=latency,
            cron_ms=cron,
            rss_mb=max(resident_mb(pid) for pid in meter.groups["app"]),
        )
        return result, await profiling
    finally:
        await asyncio.to_thread(deployment.stop)
        await mongo.drop_database(deployment.database)
        await mongo.close()


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument(
        "--profile",
        type=float,
        default=0,
        metavar="SECONDS",
        help="sample the worker app and the database server with py-spy for SECONDS while one "
        "instance runs (use enough --events to last that long)",
    )
    parser.add_argument(
        "--python-server-events",
        type=int,
        default=2000,
        help="after the main run, ours (1 instance) and the peers once more on secantusd-py, for "
        "the record, with this many items (0: skip)",
    )
    parser.add_argument("--record-pass", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.record_pass:
        await _record_pass(args.events, args.record_pass)
        return
    uptime = time.time() - psutil.Process(database_pid()).create_time()
    broker = pubsub_of_environment()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        one, profiles = await measure(
            1, args.events, folder, profile_seconds=args.profile, broker=broker
        )
        bulk, _ = await measure(1, args.events, folder, handler="bulk", broker=broker)
        three, _ = await measure(3, args.events, folder, broker=broker)
        batched, _ = await measure(1, args.events, folder, handler="batch", broker=broker)
        if broker == "redis":
            once, _ = await measure(1, args.events, folder, handler="transactional")
            limited, _ = await measure(1, args.events, folder, handler="limited")
            ours = [one, bulk, three, batched, once, limited]
        else:
            # Both brokers in one run; the forms that cost the same on either are left out.
            on_redis, _ = await measure(1, args.events, folder)
            ours = [one, bulk, three, batched, on_redis]
    peers = [await measure_peer(name, args.events) for name in ("dramatiq", "taskiq")]
    best = max(peers, key=lambda peer: peer.events_per_second)
    lines = [
        f"{args.events} work items, one MongoDB insert each (database server up {uptime:.0f} s "
        "when the run began)",
        f"{'':48} {'items/s':>8} {'x best peer':>11} {'db trips':>8}  CPU ms per item",
    ]
    lines += [_row(result, best.events_per_second) for result in [*ours, *peers]]
    lines.append(
        f"publish-to-applied at {OFFERED_RATE:g} events/s offered (open loop, 1 instance): "
        f"p50 {one.latency_ms['p50']} ms, p99 {one.latency_ms['p99']} ms; with bulk delivery "
        f"p50 {bulk.latency_ms['p50']} ms, p99 {bulk.latency_ms['p99']} ms; "
        f"worker RSS at the end: {one.rss_mb} MB (1 instance), {three.rss_mb} MB (of 3)"
    )
    for result in (one, three):
        lines.append(f"cron tick to run start under that load, {result.name}: {_cron_line(result)}")
    record_events = args.python_server_events if broker == "redis" else 0
    python_server = _on_python_server(record_events) if record_events else []
    if python_server:
        lines.append(f"for the record, on secantusd-py (a fresh store, {record_events} items):")
        best_there = max(r.events_per_second for r in python_server[1:])
        lines += [_row(result, best_there) for result in python_server]
    sys.stdout.write("\n".join(lines) + "\n")
    RESULTS.mkdir(exist_ok=True)
    tag = "" if broker == "redis" else f"-{broker}"
    if profiles:
        text = "\n".join(line for profile in profiles for line in profile.lines()) + "\n"
        sys.stdout.write(text)
        (RESULTS / f"{date.today().isoformat()}{tag}-profile.txt").write_text(text)
    report = {
        "events": args.events,
        "broker": broker,
        "database_uptime_seconds": round(uptime),
        "results": [asdict(r) for r in [*ours, *peers]],
        "on_secantusd_py": [asdict(r) for r in python_server],
    }
    (RESULTS / f"{date.today().isoformat()}{tag}.json").write_text(json.dumps(report, indent=2))
    chart = RESULTS / f"{date.today().isoformat()}{tag}.png"
    draw([*ours, *peers], f"{args.events} work items, one insert each ({date.today()})", chart)
    sys.stdout.write(f"written: {chart}\n")


PYTHON_SERVER_PORT = 27018


def _on_python_server(events: int) -> list[Result]:
    """Ours with one instance, then the peers, against secantusd-py on a fresh store: a pass of
    its own, in a process of its own (the database's address is read at import)."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        database_server(PYTHON_SERVER, PYTHON_SERVER_PORT) as pid,
    ):
        out = Path(tmp) / "record.json"
        env = {
            **os.environ,
            "MONGODB_URI": f"mongodb://127.0.0.1:{PYTHON_SERVER_PORT}/?retryWrites=false",
            "BENCH_DATABASE_PID": str(pid),
        }
        command = [sys.executable, "-m", "bench.queue_throughput", "--events", str(events)]
        subprocess.run([*command, "--record-pass", str(out)], env=env, check=True)
        return [Result(**r) for r in json.loads(out.read_text())]


async def _record_pass(events: int, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        one, _ = await measure(1, events, Path(tmp))
    peers = [await measure_peer(name, events) for name in ("dramatiq", "taskiq")]
    await asyncio.to_thread(out.write_text, json.dumps([asdict(r) for r in [one, *peers]]))


def _row(result: Result, best_per_second: float) -> str:
    cpu = ", ".join(f"{k} {v:.2f}" for k, v in result.cpu_ms_per_event.items())
    ratio = result.events_per_second / best_per_second
    trips = result.database_requests_per_event
    return f"{result.name:48} {result.events_per_second:8.1f} {ratio:11.2f} {trips:8.2f}  {cpu}"


async def _nothing() -> list[Profile]:
    return []


def _cron_line(result: Result) -> str:
    cron = result.cron_ms
    if "p50" not in cron:
        return f"{cron.get('runs', 0)} runs, too few to tell"
    return f"p50 {cron['p50']} ms, max {cron['max']} ms over {cron['runs']} ticks"


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
