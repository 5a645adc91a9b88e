"""Requests the database server has served (serverStatus `network.numRequests`, which mongod
and SecantusDB both report): round trips per event, everything included (the engine's polls
and lease renewals, the drivers' monitoring)."""

from typing import Any

from pymongo import AsyncMongoClient


async def requests_served(client: AsyncMongoClient[dict[str, Any]]) -> int:
    status = await client.admin.command("serverStatus")
    return int(status["network"]["numRequests"])
