"""While MongoDB is away an event is left with Dapr (RETRY), then applied once it is back."""

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest

from app.core.config import ConnectionStringsSection, Settings
from app.db.mongo import Database
from tests.integration.conftest import serve
from tests.integration.test_events import cloud_event, deliver
from tests.support import MONGODB_URI, eventually
from tests.tcp_proxy import TcpProxy


@pytest.fixture
async def client_via_proxy(
    proxy: TcpProxy, database_name: str, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
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


async def test_an_event_during_an_outage_is_retried_not_lost(
    client_via_proxy: httpx.AsyncClient, proxy: TcpProxy, db: Database
) -> None:
    event = cloud_event({"orderId": "during-outage"})

    await proxy.cut()
    assert await deliver(client_via_proxy, event) == "RETRY"
    readiness = await client_via_proxy.get("/readyz")
    assert readiness.status_code == 503
    assert "mongodb" in readiness.json()["failing"]

    await proxy.start()  # the same port again, as a restarted server

    async def redelivered() -> bool:  # as Dapr does after RETRY, until the app takes it
        return await deliver(client_via_proxy, event) == "SUCCESS"

    await eventually(redelivered, within=20, interval=0.5, what="a successful redelivery")
    assert await db["domain_events"].count_documents({"_id": event["id"]}) == 1
