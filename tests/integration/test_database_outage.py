"""While MongoDB is away an event is left with Dapr (RETRY), then applied once it is back."""

import httpx

from app.db.mongo import Database
from tests.integration.test_events import cloud_event, deliver
from tests.support import eventually
from tests.tcp_proxy import TcpProxy


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
