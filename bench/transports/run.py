"""Delivery transports from daprd to an app, measured side by side on the same daprd build,
Redis and component: HTTP (daprd POSTs each event to the app, what the worker uses today) and a
streaming subscription (the app holds one gRPC stream to daprd and acknowledges each event on
it). Both consumers do nothing but answer SUCCESS, so the figures are the transport's own:
events per second, and CPU milliseconds per event of daprd (its publish API included, the same
for both) and of the consumer.

    make bench-transports   (or: make up && .venv/bin/python -m bench.transports.run)
"""

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import IO

import httpx
import redis.asyncio as redis

from bench.cpu import STATE_DIR, CpuMeter

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
HTTP_PORT, GRPC_PORT, METRICS_PORT, APP_PORT = 13950, 15550, 19650, 18550
BATCH = 250
REDIS_PORT = int(os.environ.get("REDIS_PORT", "6379"))


@dataclass(frozen=True)
class Figures:
    transport: str
    events_per_second: float
    daprd_ms_per_event: float
    consumer_ms_per_event: float


def daprd_binary() -> str:
    found = shutil.which("daprd") or str(Path.home() / ".dapr" / "bin" / "daprd")
    assert Path(found).exists(), "no daprd: run `make up`, which builds it"
    return found


def resources(tmp: Path) -> Path:
    """The stack's pub/sub component alone: no actors, no bindings, nothing else polling."""
    folder = tmp / "resources"
    folder.mkdir(exist_ok=True)
    shutil.copy(ROOT / "components" / "pubsub.yaml", folder / "pubsub.yaml")
    return folder


async def wait_for(condition: Callable[[], Awaitable[bool]], *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"gave up waiting for {what} after {seconds:.0f} s")


def _spawn(
    command: list[str], env: dict[str, str] | None, log: IO[bytes]
) -> "subprocess.Popen[bytes]":
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)


async def group_of(client: "redis.Redis", topic: str, group: str) -> dict[str, object] | None:
    try:
        groups = await client.xinfo_groups(topic)
    except redis.ResponseError:
        return None  # no stream yet
    return next((g for g in groups if g["name"] == group), None)


async def measure(transport: str, events: int, tmp: Path) -> Figures:
    topic, app_id = f"bench-transport-{transport}", f"bench-transport-{transport}"
    client = redis.Redis(host="127.0.0.1", port=REDIS_PORT, decode_responses=True)
    await client.delete(topic)
    env = {**os.environ, "BENCH_TOPIC": topic}
    consumer_cmd = (
        [sys.executable, "-m", "uvicorn", "bench.transports.noop_http_app:app", "--loop", "uvloop",
         "--http", "httptools", "--no-access-log", "--host", "127.0.0.1", "--port", str(APP_PORT)]
        if transport == "http"
        else [sys.executable, "-m", "bench.transports.noop_stream_consumer", str(GRPC_PORT)]
    )  # fmt: skip
    daprd_cmd = [
        daprd_binary(), "--app-id", app_id, "--dapr-http-port", str(HTTP_PORT),
        "--dapr-grpc-port", str(GRPC_PORT), "--metrics-port", str(METRICS_PORT),
        "--dapr-listen-addresses", "127.0.0.1", "--resources-path", str(resources(tmp)),
        "--config", str(STATE_DIR / "dapr" / "config.yaml"), "--log-level", "warn",
        *(["--app-port", str(APP_PORT), "--app-channel-address", "127.0.0.1"]
          if transport == "http" else []),
    ]  # fmt: skip
    log = (tmp / f"{transport}.log").open("wb")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        if transport == "http":  # the app answers before daprd reads its subscriptions
            processes.append(_spawn(consumer_cmd, env, log))
        daprd = _spawn(daprd_cmd, None, log)
        processes.append(daprd)
        async with httpx.AsyncClient(timeout=30) as http:

            async def healthy() -> bool:
                try:
                    return (await http.get(f"http://127.0.0.1:{HTTP_PORT}/v1.0/healthz")).is_success
                except httpx.TransportError:
                    return False

            await wait_for(healthy, seconds=60, what="daprd")
            if transport == "stream":
                processes.append(_spawn(consumer_cmd, env, log))

            async def subscribed() -> bool:
                return await group_of(client, topic, app_id) is not None

            await wait_for(subscribed, seconds=60, what=f"the consumer group of {topic}")
            consumer = processes[0] if transport == "http" else processes[-1]
            meter = CpuMeter({"daprd": [daprd.pid], "consumer": [consumer.pid]})
            meter.start()
            started = time.perf_counter()
            for first in range(0, events, BATCH):
                entries = [
                    {"entryId": str(i), "event": {"i": i}, "contentType": "application/json"}
                    for i in range(first, min(first + BATCH, events))
                ]
                answer = await http.post(
                    f"http://127.0.0.1:{HTTP_PORT}/v1.0-alpha1/publish/bulk/pubsub/{topic}",
                    json=entries,
                )
                answer.raise_for_status()

            async def drained() -> bool:
                group = await group_of(client, topic, app_id)
                return bool(group and group["entries-read"] == events and group["pending"] == 0)

            await wait_for(drained, seconds=600, what=f"{events} events acknowledged")
            elapsed = time.perf_counter() - started
            meter.stop()
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
        await client.delete(topic)
        await client.aclose()
    spent = meter.ms_per_event(events)
    return Figures(transport, round(events / elapsed, 1), spent["daprd"], spent["consumer"])


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of both")
    args = parser.parse_args(argv)
    figures: list[Figures] = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for transport in ("http", "stream"):
                result = await measure(transport, args.events, Path(tmp))
                figures.append(result)
                sys.stdout.write(
                    f"{result.transport:7} {result.events_per_second:8.1f} events/s   "
                    f"daprd {result.daprd_ms_per_event:.3f} ms/event   "
                    f"consumer {result.consumer_ms_per_event:.3f} ms/event\n"
                )
                sys.stdout.flush()
    out = RESULTS / f"{date.today().isoformat()}-transports.json"
    out.write_text(json.dumps([asdict(f) for f in figures], indent=2) + "\n")
    sys.stdout.write(f"written: {out}\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
