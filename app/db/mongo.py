"""The MongoDB client: one per process, owned by the app's lifespan."""

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from app.core.config import Settings

Document = dict[str, Any]
Database = AsyncDatabase[Document]

DEFAULT_DATABASE = "Aevatar"


def create_client(settings: Settings) -> AsyncMongoClient[Document]:
    options: dict[str, Any] = {"tz_aware": True, "appname": settings.app.name}
    if "serverselectiontimeoutms" not in settings.mongo_uri.lower():
        # Fail a request in seconds, not pymongo's 30, while the database is away.
        options["serverSelectionTimeoutMS"] = 5_000
    return AsyncMongoClient(settings.mongo_uri, **options)


def database_of(client: AsyncMongoClient[Document]) -> Database:
    """The database named in the connection string, as in the original (`.../Aevatar`)."""
    return client.get_default_database(DEFAULT_DATABASE)


async def ping(client: AsyncMongoClient[Document]) -> None:
    await client.admin.command("ping")
