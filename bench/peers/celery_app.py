"""Celery's side of the workflow benchmark: `celery -A bench.peers.celery_app worker --pool
threads --concurrency 8`, on the local stack's Redis (database 3) as broker and result backend.

The same shapes as ours (bench/workers.py): a chain of three steps, and a chord of ten steps
with a callback. Each step inserts one document (with when it started and ended, for the start
latency between steps); the end of a chain or chord inserts one into `flows`."""

import os
import time
from typing import Any

from celery import Celery
from pymongo import MongoClient

REDIS_URL = os.environ.get("BENCH_CELERY_REDIS", "redis://127.0.0.1:6379/3")
app = Celery("bench", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(task_acks_late=True, worker_prefetch_multiplier=4, result_expires=600)
_client: MongoClient[dict[str, Any]] = MongoClient(
    os.environ.get("BENCH_MONGODB_URI", "mongodb://127.0.0.1:27017/")
)
_db = _client[os.environ.get("BENCH_DATABASE", "bench_celery")]


@app.task
def step(flow: str, n: int) -> int:
    began = time.time()
    _db["steps"].insert_one({"_id": f"{flow}-{n}", "flow": flow, "n": n, "began": began,
                             "ended": time.time()})  # fmt: skip
    return n


@app.task
def finished(results: Any, flow: str) -> None:
    """The chain's last link, or the chord's callback."""
    count = len(results) if isinstance(results, list) else 3
    _db["flows"].insert_one({"_id": flow, "steps": count, "at": time.time()})
