"""DataSyncWorker against a real HTTP server on 127.0.0.1 that fails some of its requests."""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from app.core.config import Settings
from app.db.mongo import Database
from app.integrations.http import DEFAULT_TIMEOUT_SECONDS, ExternalServiceError, ResilientHttp
from tests.integration.conftest import serve
from tests.partner_api import PartnerApi, PartnerState
from tests.support import run_reaching, trigger


@pytest.fixture
def partner() -> Iterator[PartnerApi]:
    api = PartnerApi(PartnerState(fail_every=3))
    api.state.add_items(250)
    api.start()
    yield api
    api.stop()


@pytest.fixture
async def syncing_client(
    settings: Settings, partner: PartnerApi, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    # The worker's own settings section, read at start-up from the environment.
    monkeypatch.setenv("DataSync__BaseUrl", partner.url)
    monkeypatch.setenv("DataSync__PageSize", "40")
    monkeypatch.setenv("DataSync__TimeoutSeconds", "5")
    async with serve(settings) as client:
        yield client


async def test_sync_survives_failing_requests_and_then_fetches_only_what_is_new(
    syncing_client: httpx.AsyncClient, partner: PartnerApi, db: Database
) -> None:
    first = await run_reaching(
        syncing_client, await trigger(syncing_client, "DataSyncWorker"), {"succeeded", "dead"}
    )

    assert first["status"] == "succeeded", first["error"]
    assert first["result"] == {"fetched": 250, "new": 250, "pages": 7, "from": 0, "to": 250}
    assert partner.state.failures >= 2, "some requests failed and were retried"
    assert await db["synced_items"].count_documents({}) == 250
    stored = await db["synced_items"].find_one({"_id": "ext-7"})
    assert stored is not None
    assert stored["data"]["name"] == "Item 7"

    partner.state.add_items(30)
    served_before = len(partner.state.served)
    second = await run_reaching(
        syncing_client, await trigger(syncing_client, "DataSyncWorker"), {"succeeded", "dead"}
    )

    assert second["status"] == "succeeded", second["error"]
    assert second["result"] == {"fetched": 30, "new": 30, "pages": 1, "from": 250, "to": 280}
    assert partner.state.served[served_before:] == [(250, 30)], "asked only for what is new"
    assert await db["synced_items"].count_documents({}) == 280


async def test_without_a_partner_url_the_task_gives_up_with_the_reason(
    client: httpx.AsyncClient,
) -> None:
    run = await run_reaching(client, await trigger(client, "DataSyncWorker"), {"dead", "succeeded"})

    assert run["status"] == "dead"
    assert run["attempt"] == 1
    assert "DataSync:BaseUrl is not set" in run["error"]["message"]


async def test_a_call_can_give_each_try_a_timeout_of_its_own() -> None:
    slow = PartnerApi(PartnerState(fail_every=0, answer_after_seconds=1.0))
    slow.state.add_items(3)
    slow.start()
    try:
        async with httpx.AsyncClient(timeout=DEFAULT_TIMEOUT_SECONDS) as client:
            http = ResilientHttp(client, attempts=2, initial_wait=0.01)
            with pytest.raises(ExternalServiceError, match="ReadTimeout"):
                await http.get_json(f"{slow.url}/items", seconds_per_try=0.2)
            timed_out_tries = slow.state.requests
            body = await http.get_json(f"{slow.url}/items")  # the client's 10 s: answered
    finally:
        slow.stop()

    assert timed_out_tries == 2, "each try timed out, and was tried again"
    assert len(body["items"]) == 3
