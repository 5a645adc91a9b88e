"""A run's lease outlives an actor that does not answer: the lease actor's call waits a part of
the lease, not longer, and a flow gate's place is renewed beside the lease, not before its next
renewal; so the MongoDB lease is renewed in time and nobody takes the run over.

Seen in CI (2026-12-07): a data processor taken over from a killed instance was taken over a
second time, from a live one, while placement moved the actors (a third attempt)."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from app.core.config import DaprSection, Settings
from app.db.mongo import Database
from tests.integration.conftest import serve
from tests.integration.test_data_processor import JOB, check_summaries, seed
from tests.support import run_reaching, trigger
from tests.workers import SLOW_GATED_JOB

Answer = Callable[[str, dict[str, Any]], dict[str, Any] | None]
"""What the sidecar answers to a request (its path and JSON body); None: it never answers."""


@contextlib.asynccontextmanager
async def app_beside_sidecar(
    settings: Settings, answer: Answer
) -> AsyncIterator[httpx.AsyncClient]:
    """The app, its sidecar an HTTP server on a free port that answers what `answer` says or
    holds the request (a sidecar waiting for placement, say)."""
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                lines = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
                sizes = [
                    int(line.split(":")[1])
                    for line in lines
                    if ":" in line and line.lower().startswith("content-length")
                ]
                body = json.loads(await reader.readexactly(sizes[0])) if sizes and sizes[0] else {}
                reply = answer(lines[0].split(" ")[1], body)
                if reply is None:
                    await reader.read()  # until the app gives up on it
                    return
                data = json.dumps(reply).encode()
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(data)}\r\n\r\n"
                writer.write(head.encode() + data)
                await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    dapr = settings.dapr.model_copy(update={"http_port": server.sockets[0].getsockname()[1]})
    assert isinstance(dapr, DaprSection)
    try:
        async with serve(settings.model_copy(update={"dapr": dapr})) as client:
            yield client
    finally:
        for writer in held:
            writer.close()
        server.close()


def never(path: str, body: dict[str, Any]) -> None:
    return None


def gate_that_does_not_renew(path: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """A flow gate that lets runs in and out at once, and holds every renewal of a place."""
    if "/actors/FlowGate/" not in path or body.get("renew"):
        return None
    entered = {
        run_id: {"granted": True, "reason": "", "retry_after_seconds": 0}
        for run_id in body.get("enter", [])
    }
    return {"entered": entered, "running": len(entered)}


async def test_a_data_processor_keeps_its_lease_while_the_lease_actor_does_not_answer(
    db: Database, settings: Settings
) -> None:
    expected = await seed(db, customers=90, orders=300)
    # Three chunks, each longer than the lease (2 s) would last without a renewal.
    pause_ms = int(settings.worker.lease_seconds * 1000)

    async with app_beside_sidecar(settings, never) as client:
        run_id = await trigger(client, JOB, {"chunk_size": 30, "pause_ms": pause_ms})
        run = await run_reaching(client, run_id, {"succeeded", "dead"}, within=60)

    assert run["status"] == "succeeded", run["error"]
    assert [a["status"] for a in run["attempts"]] == ["succeeded"], run["attempts"]
    await check_summaries(db, expected, run_id)


async def test_a_gated_run_keeps_its_lease_while_its_gate_does_not_renew_its_place(
    db: Database, settings: Settings
) -> None:
    # Three leases long: without a renewal, the poller would take it over twice.
    seconds = 3 * settings.worker.lease_seconds

    async with app_beside_sidecar(settings, gate_that_does_not_renew) as client:
        run_id = await trigger(client, SLOW_GATED_JOB, {"seconds": seconds})
        run = await run_reaching(client, run_id, {"succeeded", "dead"}, within=60)

    assert run["status"] == "succeeded", run["error"]
    assert [a["status"] for a in run["attempts"]] == ["succeeded"], run["attempts"]
