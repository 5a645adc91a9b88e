"""Helpers for the e2e tests of the customer-summary data processor."""

from typing import Any

import httpx

from app.db.mongo import Database
from tests.support import eventually


async def seed_customers(db: Database, count: int) -> None:
    """`count` customers with two orders each, in a database cleared of earlier ones."""
    for collection in ("customers", "orders", "customer_summaries"):
        await db[collection].delete_many({})
    await db["customers"].insert_many([{"_id": f"c{n:05d}"} for n in range(count)])
    await db["orders"].insert_many(
        [{"customer_id": f"c{n % count:05d}", "amount": n % 90} for n in range(count * 2)]
    )


async def progress_reaching(api: httpx.AsyncClient, run_id: str, done: int) -> dict[str, Any]:
    """Polls the run until at least `done` customers are done; returns it then."""

    async def far_enough() -> dict[str, Any] | None:
        run: dict[str, Any] = (await api.get(f"/api/runs/{run_id}")).json()
        progress = run["progress"]["done"] if run["progress"] else 0
        return run if progress >= done else None

    return await eventually(far_enough, what=f"{done} customers done")
