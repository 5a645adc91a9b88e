"""Taskiq's side: `python -m taskiq worker bench.peers.taskiq_app:broker --workers 1`.

taskiq-redis's list queue on the local stack's Redis (database 3); the task inserts one document
with PyMongo's async client, as our work-item handler does."""

import os
from typing import Any

from pymongo import AsyncMongoClient
from taskiq_redis import ListQueueBroker

broker = ListQueueBroker(os.environ.get("BENCH_TASKIQ_REDIS", "redis://127.0.0.1:6379/3"))
_client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
    os.environ.get("BENCH_MONGODB_URI", "mongodb://127.0.0.1:27017/")
)
_items = _client[os.environ.get("BENCH_DATABASE", "bench_taskiq")]["items"]


@broker.task
async def insert_item(item_id: str) -> None:
    await _items.insert_one({"_id": item_id})
