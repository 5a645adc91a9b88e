"""Runs a peer's worker on the local stack and measures how fast it applies N inserts."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from bench.completion import all_stored
from bench.cpu import CpuMeter, database_pid
from bench.database import requests_served
from bench.peers.dramatiq_app import insert_item as dramatiq_insert
from bench.peers.taskiq_app import broker
from bench.peers.taskiq_app import insert_item as taskiq_insert
from bench.result import Result
from tests.support import MONGODB_URI, eventually, unique_database

ROOT = Path(__file__).resolve().parents[2]


async def measure_peer(name: str, events: int) -> Result:
    database = unique_database(f"bench_{name}")
    env = {**os.environ, "BENCH_MONGODB_URI": MONGODB_URI, "BENCH_DATABASE": database}
    command = {
        "dramatiq": [sys.executable, "-m", "dramatiq", "bench.peers.dramatiq_app",
                     "--processes", "1", "--threads", "8"],
        "taskiq": [sys.executable, "-m", "taskiq", "worker", "bench.peers.taskiq_app:broker",
                   "--workers", "1", "--max-async-tasks", "100"],
    }[name]  # fmt: skip
    worker = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGODB_URI)
    items = mongo[database]["items"]
    try:
        await _warm_up(name, items)
        meter = CpuMeter({name: [worker.pid], "database": [database_pid()]})
        ids = [f"{name}-{n:06d}" for n in range(events)]
        requests_before = await requests_served(mongo)
        meter.start()
        started = time.perf_counter()
        await _enqueue(name, ids)

        await all_stored(items, last_id=ids[-1], expected=events + 1)  # and the warm-up
        elapsed = time.perf_counter() - started
        meter.stop()
        requests = await requests_served(mongo) - requests_before
        return Result(
            name, events / elapsed, meter.ms_per_event(events), round(requests / events, 2)
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.wait(), 60)
        await mongo.drop_database(database)
        await mongo.close()


async def _warm_up(name: str, items: Any) -> None:
    """One task through, so that the worker is up and connected before the clock starts."""
    await _enqueue(name, ["warm-up"])
    await eventually(lambda: items.find_one({"_id": "warm-up"}), within=60, what="warm-up")


async def _enqueue(name: str, ids: list[str]) -> None:
    if name == "dramatiq":
        await asyncio.to_thread(lambda: [dramatiq_insert.send(i) for i in ids])
        return
    await broker.startup()
    try:
        for start in range(0, len(ids), 500):
            await asyncio.gather(*(taskiq_insert.kiq(i) for i in ids[start : start + 500]))
    finally:
        await broker.shutdown()
