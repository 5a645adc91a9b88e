"""The `dashboard_login_failures` collection: wrong tokens at the dashboard's login, counted per
client address and per name over a window, shared by every instance (a guesser who is spread
over the replicas by the load balancer meets one count).

A key with `LoginFailuresAllowed` failures in its window is locked until the window ends: its
logins are refused without looking at the token. TTL removes spent windows."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo import IndexModel

from app.db.mongo import Database
from app.db.upserts import upserted

COLLECTION = "dashboard_login_failures"


@dataclass(frozen=True)
class Lockout:
    key: str
    until: datetime


class LoginFailures:
    def __init__(self, db: Database, *, allowed: int, window: timedelta) -> None:
        self._failures = db[COLLECTION]
        self._allowed = allowed
        self._window = window

    async def ensure_indexes(self) -> None:
        await self._failures.create_indexes(
            [IndexModel("expires_at", expireAfterSeconds=0, name="expires_at_ttl")]
        )

    async def lockout(self, keys: list[str], now: datetime) -> Lockout | None:
        """The first of `keys` that has spent its failures, and until when."""
        cursor = self._failures.find(
            {"_id": {"$in": keys}, "failures": {"$gte": self._allowed}, "expires_at": {"$gt": now}}
        )
        async for document in cursor:
            return Lockout(key=str(document["_id"]), until=document["expires_at"])
        return None

    async def count(self, keys: list[str], now: datetime) -> None:
        """One more failure for each key; a key whose window has ended starts a new one."""
        for key in keys:
            document = await upserted(
                self._failures,
                {"_id": key},
                {"$inc": {"failures": 1}, "$setOnInsert": {"expires_at": now + self._window}},
            )
            if document["expires_at"] <= now:
                # Spent but not yet removed by the TTL monitor (it runs once a minute).
                await self._failures.update_one(
                    {"_id": key, "expires_at": document["expires_at"]},
                    {"$set": {"failures": 1, "expires_at": now + self._window}},
                )

    async def clear(self, keys: list[str]) -> None:
        """A login that succeeded: its address and name start afresh."""
        await self._failures.delete_many({"_id": {"$in": keys}})
