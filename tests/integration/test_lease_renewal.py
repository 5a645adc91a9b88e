"""A run's lease outlives a sidecar that does not answer: the lease actor's call waits a part
of the lease, not longer, so the MongoDB lease is renewed in time and nobody takes the run over.

Seen in CI (2026-12-07): a data processor taken over from a killed instance was taken over a
second time, from a live one, while placement moved the actors (a third attempt)."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from app.core.config import DaprSection, Settings
from app.db.mongo import Database
from tests.integration.conftest import serve
from tests.integration.test_data_processor import JOB, check_summaries, seed
from tests.support import run_reaching, trigger


@pytest.fixture
async def hung_sidecar() -> AsyncIterator[int]:
    """A port that takes connections and requests and never answers (a sidecar waiting for
    placement, say); its port."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()


@pytest.fixture
async def client_with_hung_sidecar(
    settings: Settings, hung_sidecar: int
) -> AsyncIterator[httpx.AsyncClient]:
    dapr = settings.dapr.model_copy(update={"http_port": hung_sidecar})
    assert isinstance(dapr, DaprSection)
    async with serve(settings.model_copy(update={"dapr": dapr})) as client:
        yield client


async def test_a_data_processor_keeps_its_lease_while_the_lease_actor_does_not_answer(
    client_with_hung_sidecar: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    expected = await seed(db, customers=90, orders=300)
    # Three chunks, each longer than the lease (2 s) would last without a renewal.
    pause_ms = int(settings.worker.lease_seconds * 1000)

    run_id = await trigger(client_with_hung_sidecar, JOB, {"chunk_size": 30, "pause_ms": pause_ms})

    run = await run_reaching(client_with_hung_sidecar, run_id, {"succeeded", "dead"}, within=60)
    assert run["status"] == "succeeded", run["error"]
    assert [a["status"] for a in run["attempts"]] == ["succeeded"], run["attempts"]
    await check_summaries(db, expected, run_id)
