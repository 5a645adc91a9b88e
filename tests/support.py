"""Helpers shared by the test layers."""

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")

# The App section of a test that starts the app without its tokens: production refuses to.
DEVELOPMENT = {"Environment": "Development"}
MONGODB_URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/?retryWrites=false")


def uri_with_database(uri: str, database: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def unique_database(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def eventually_sync(
    probe: Callable[[], T | None],
    *,
    within: float = 30.0,
    interval: float = 0.1,
    what: str = "the condition",
) -> T:
    """`eventually` for code outside an event loop (process management in fixtures)."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")
        time.sleep(interval)


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    within: float = 30.0,
    interval: float = 0.2,
    what: str = "the condition",
) -> T:
    """Polls `probe` until it returns something truthy; fails after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await probe()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


async def trigger(api: "httpx.AsyncClient", job: str, payload: Any = None) -> str:
    """Starts a run of `job` through the operator API; its id."""
    response = await api.post(f"/api/jobs/{job}/trigger", json={"payload": payload})
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run_id"]
    return run_id


async def run_reaching(
    client: "httpx.AsyncClient", run_id: str, statuses: set[str], *, within: float = 30.0
) -> dict[str, Any]:
    """Polls the operator API until the run's status is one of `statuses`."""

    async def probe() -> dict[str, Any] | None:
        response = await client.get(f"/api/runs/{run_id}")
        assert response.status_code == 200, response.text
        run: dict[str, Any] = response.json()
        return run if run["status"] in statuses else None

    return await eventually(probe, within=within, what=f"run {run_id} to be {sorted(statuses)}")


def item_event(item_id: str, *, source: str) -> dict[str, Any]:
    """An item as a CloudEvent whose id is the item's: its effects are counted per id. Its
    `time` is set here, as a CloudEvents SDK sets it, so that a publisher that sends it again
    sends the same event (without it, daprd would set each publish's own)."""
    return {
        "specversion": "1.0",
        "id": item_id,
        "source": source,
        "type": "item",
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": {"item_id": item_id},
    }


async def until_started(client: "httpx.AsyncClient", within: float = 60.0) -> None:
    """Start-up runs behind the probes: wait until it has opened the app's resources."""

    async def started() -> bool:
        response = await client.get("/healthz")
        assert response.json()["phase"] != "failed", response.text
        return bool(response.json()["phase"] == "started")

    await eventually(started, within=within, interval=0.05, what="the app's start-up")


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
