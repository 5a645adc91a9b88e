"""The app in-process (httpx over ASGI) against the real MongoDB-wire server.

Each test gets a database of its own, dropped afterwards.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pymongo import AsyncMongoClient

from app.core.config import ConnectionStringsSection, Settings
from app.db.mongo import Database
from app.main import create_app
from tests.support import (
    DEVELOPMENT,
    MONGODB_URI,
    unique_database,
    until_started,
    uri_with_database,
)
from tests.tcp_proxy import TcpProxy

# A port where no sidecar listens: the app must work without one, and say so in /readyz.
NO_SIDECAR_PORT = 1


@pytest.fixture
async def database_name() -> AsyncIterator[str]:
    """Dropped after the test whether or not the test opened it: tests that only drive the app
    left theirs behind, a thousand a week on a developer's server, which slowed it down."""
    name = unique_database("aevatar_it")
    yield name
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(MONGODB_URI)
    await client.drop_database(name)
    await client.close()


@pytest.fixture
def settings(database_name: str) -> Settings:
    return Settings(
        App=DEVELOPMENT,
        ConnectionStrings={"Default": uri_with_database(MONGODB_URI, database_name)},
        Dapr={"HttpPort": NO_SIDECAR_PORT, "HostActors": False},
        Worker={"Modules": ["tests.workers"], "PollIntervalSeconds": 0.05, "LeaseSeconds": 2},
    )


@pytest.fixture
async def mongo(database_name: str) -> AsyncIterator[AsyncMongoClient[dict[str, object]]]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(MONGODB_URI, tz_aware=True)
    yield client
    await client.close()


@pytest.fixture
def db(mongo: AsyncMongoClient[dict[str, object]], database_name: str) -> Database:
    database: Database = mongo[database_name]
    return database


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    """A TCP proxy to the database, that a test can cut (a crash), start again (a restart) or
    freeze (a server under SIGSTOP)."""
    target = urlsplit(MONGODB_URI)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 27017)
    await proxy.start()
    yield proxy
    proxy.thaw()
    if proxy.listening:
        await proxy.cut()


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app of `settings`, its lifespan running, behind an httpx client."""
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            await until_started(client)
            yield client


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings) as client:
        yield client


@pytest.fixture
async def client_via_proxy(
    proxy: TcpProxy, database_name: str, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """The app, its database reached through `proxy` (which a test can cut or freeze)."""
    query = urlsplit(MONGODB_URI).query
    # directConnection: the server announces itself as a replica set member at its own address,
    # and the driver would go there, around the proxy.
    uri = (
        f"mongodb://127.0.0.1:{proxy.port}/{database_name}?{query}"
        "&serverSelectionTimeoutMS=500&directConnection=true"
    )
    async with serve(
        settings.model_copy(update={"connection_strings": ConnectionStringsSection(Default=uri)})
    ) as client:
        yield client
