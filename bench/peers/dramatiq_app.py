"""Dramatiq's side: `python -m dramatiq bench.peers.dramatiq_app --processes 1 --threads 8`.

The Redis broker on the local stack's Redis (database 2, so that its keys stay apart); the actor
inserts one document, as our work-item handler does."""

import os
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from pymongo import MongoClient

REDIS_URL = os.environ.get("BENCH_DRAMATIQ_REDIS", "redis://127.0.0.1:6379/2")
broker = RedisBroker(url=REDIS_URL)
dramatiq.set_broker(broker)
_client: MongoClient[dict[str, Any]] = MongoClient(
    os.environ.get("BENCH_MONGODB_URI", "mongodb://127.0.0.1:27017/")
)
_items = _client[os.environ.get("BENCH_DATABASE", "bench_dramatiq")]["items"]


@dramatiq.actor(max_retries=3)
def insert_item(item_id: str) -> None:
    _items.insert_one({"_id": item_id})
