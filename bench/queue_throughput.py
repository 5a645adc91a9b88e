"""Queue throughput: work items applied per second by 1 instance and by 3, side by side.

    make up && .venv/bin/python -m bench.queue_throughput --events 2000

Each configuration is a fresh deployment (the run file of stack/scale.py, app id `worker-bench`,
a database of its own, the engine's default lease and poll settings); the events are
bulk-published to `work-items` through the sidecars, and the clock runs from the first publish
until every item is in `work_items`. The ratio, not the absolute figure, is the result: the
database (SecantusDB here) bounds both.
"""

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from tests.e2e.deployment import Ports, prepare_worker
from tests.support import MONGODB_URI, eventually, unique_database

PORTS = Ports(app=18500, http=13900, grpc=15501, metrics=19600)
BATCH = 250


async def measure(instances: int, events: int, tmp: Path) -> float:
    deployment = prepare_worker(
        tmp,
        app_id=f"worker-bench-{instances}",
        ports=PORTS,
        database=unique_database("aevatar_bench"),
        instances=instances,
        env={
            "Serilog__MinimumLevel__Default": "Warning",
            "Worker__LeaseSeconds": "15",
            "Worker__PollIntervalSeconds": "0.5",
        },
    )
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGODB_URI)
    await asyncio.to_thread(deployment.start)
    try:
        ids = [f"b-{i:06d}" for i in range(events)]
        started = time.perf_counter()
        async with httpx.AsyncClient(timeout=30) as http:
            for start in range(0, events, BATCH):
                entries = [
                    {"entryId": i, "event": {"item_id": i}, "contentType": "application/json"}
                    for i in ids[start : start + BATCH]
                ]
                sidecar = deployment.sidecar_url_of(start // BATCH % instances)
                response = await http.post(
                    f"{sidecar}/v1.0-alpha1/publish/bulk/pubsub/work-items", json=entries
                )
                response.raise_for_status()
        items = mongo[deployment.database]["work_items"]

        async def all_applied() -> bool:
            return await items.count_documents({}) >= events

        await eventually(all_applied, within=900, interval=0.5, what="every item applied")
        return events / (time.perf_counter() - started)
    finally:
        await asyncio.to_thread(deployment.stop)
        await mongo.drop_database(deployment.database)
        await mongo.close()


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
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
