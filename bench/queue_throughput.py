"""Queue throughput: work items applied per second by 1 instance and by 3, side by side.

    make up && .venv/bin/python -m bench.queue_throughput --events 2000

Each configuration is a fresh `dapr run` of the run file stack/scale.py writes (app id
`worker-bench`, its own database); the events are bulk-published to `work-items` through the
sidecars, and the clock runs from the first publish until every item is in `work_items`. The
ratio, not the absolute figure, is the result: the database (SecantusDB here) bounds both.
"""

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
import uuid
from asyncio import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import yaml
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from stack.scale import scaled_run_file

ROOT = Path(__file__).resolve().parents[1]
MONGODB_URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/?retryWrites=false")
DAPR = str(Path(os.environ.get("DAPR_RUNTIME_PATH", Path.home())) / ".dapr" / "bin" / "dapr")


def _uri(database: str) -> str:
    base, _, query = MONGODB_URI.partition("?")
    return f"{base.rstrip('/')}/{database}?{query}"


async def measure(instances: int, events: int, tmp: Path) -> float:
    database = f"aevatar_bench_{uuid.uuid4().hex[:8]}"
    spec = scaled_run_file(
        instances=instances,
        app_id="worker-bench",
        app_port=18500,
        http_port=13900,
        grpc_port=15501,
        metrics_port=19600,
        env={
            "ConnectionStrings__Default": _uri(database),
            "Serilog__MinimumLevel__Default": "Warning",
        },
        extra_resources=[],
    )
    run_file = tmp / f"bench-{instances}.yaml"
    run_file.write_text(yaml.safe_dump(spec))
    with (tmp / f"bench-{instances}.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            DAPR,
            "run",
            "-f",
            str(run_file),
            cwd=ROOT,
            env={**os.environ, "DAPR_HOST_IP": "127.0.0.1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGODB_URI)
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            for n in range(instances):
                await _until(_ready_probe(http, n), within=90)
            ids = [f"b-{i:06d}" for i in range(events)]
            started = time.perf_counter()
            for start in range(0, events, 250):
                entries = [
                    {"entryId": i, "event": {"item_id": i}, "contentType": "application/json"}
                    for i in ids[start : start + 250]
                ]
                sidecar = f"http://127.0.0.1:{13900 + start // 250 % instances}"
                response = await http.post(
                    f"{sidecar}/v1.0-alpha1/publish/bulk/pubsub/work-items", json=entries
                )
                response.raise_for_status()
            items = mongo[database]["work_items"]
            await _until(lambda: _count_is(items, events), within=900, interval=0.5)
            return events / (time.perf_counter() - started)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 60)
        await mongo.drop_database(database)
        await mongo.close()


def _ready_probe(http: httpx.AsyncClient, n: int) -> Callable[[], Awaitable[bool]]:
    return lambda: _ready(http, 18500 + n, 13900 + n)


async def _ready(http: httpx.AsyncClient, app_port: int, http_port: int) -> bool:
    try:
        app = await http.get(f"http://127.0.0.1:{app_port}/readyz")
        sidecar = await http.get(f"http://127.0.0.1:{http_port}/v1.0/healthz")
    except httpx.TransportError:
        return False
    return app.status_code == 200 and sidecar.status_code == 204


async def _count_is(collection: AsyncCollection[dict[str, Any]], expected: int) -> bool:
    return await collection.count_documents({}) >= expected


async def _until(
    probe: Callable[[], Awaitable[bool]], *, within: float, interval: float = 0.25
) -> None:
    deadline = time.monotonic() + within
    while not await probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done within {within} s")
        await asyncio.sleep(interval)


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        one = await measure(1, args.events, Path(tmp))
        three = await measure(3, args.events, Path(tmp))
    sys.stdout.write(
        f"work items applied per second ({args.events} events):\n"
        f"  1 instance : {one:8.1f}/s\n"
        f"  3 instances: {three:8.1f}/s\n"
        f"  ratio 3:1  : {three / one:8.2f}\n"
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
