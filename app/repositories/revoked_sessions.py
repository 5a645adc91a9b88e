"""The `dashboard_revoked_sessions` collection: dashboard sessions ended by a logout. A session
cookie is signed, so every instance would take it until it expires; each request checks this
collection too, so that a logout on one instance ends the session on all of them. An entry
lives as long as the cookie could (TTL)."""

from datetime import datetime

from pymongo import IndexModel

from app.db.mongo import Database

COLLECTION = "dashboard_revoked_sessions"


class RevokedSessions:
    def __init__(self, db: Database) -> None:
        self._revoked = db[COLLECTION]

    async def ensure_indexes(self) -> None:
        await self._revoked.create_indexes(
            [IndexModel("expires_at", expireAfterSeconds=0, name="expires_at_ttl")]
        )

    async def revoke(self, sid: str, *, until: datetime) -> None:
        await self._revoked.update_one({"_id": sid}, {"$set": {"expires_at": until}}, upsert=True)

    async def is_revoked(self, sid: str) -> bool:
        return await self._revoked.find_one({"_id": sid}, projection={"_id": 1}) is not None
