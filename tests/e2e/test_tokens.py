"""Both tokens on the real stack: the sidecar requires DAPR_API_TOKEN on its API, and the app
sends it on every call it makes (Jobs API, actors); the sidecar sends APP_API_TOKEN on every
delivery, and the app requires it."""

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from app.db.mongo import Database
from tests.e2e.deployment import Ports, RunningWorker, database_of, prepare_worker, started
from tests.support import eventually, unique_database

pytestmark = pytest.mark.e2e

TOKEN_PORTS = Ports(app=18400, http=14000, grpc=15401, metrics=19590)
SIDECAR_TOKEN = "e2e-sidecar-api-token"
APP_TOKEN = "e2e-app-api-token"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    deployment = prepare_worker(
        tmp_path_factory.mktemp("tokens"),
        app_id="worker-tokens",
        ports=TOKEN_PORTS,
        database=unique_database("aevatar_tokens"),
        env={},
        resources=[Path(__file__).parent / "components"],
        # daprd reads both from its environment; the app inherits them from the CLI too.
        cli_env={"DAPR_API_TOKEN": SIDECAR_TOKEN, "APP_API_TOKEN": APP_TOKEN},
    )
    with started(deployment) as running:
        yield running


@pytest.fixture(scope="module")
async def db(
    guarded: RunningWorker, mongo: AsyncMongoClient[dict[str, Any]]
) -> AsyncIterator[Database]:
    async with database_of(guarded, mongo) as db:
        yield db


async def test_the_sidecar_refuses_a_call_without_its_token(guarded: RunningWorker) -> None:
    async with httpx.AsyncClient(base_url=guarded.sidecar_url, timeout=10) as sidecar:
        refused = await sidecar.get("/v1.0/metadata")
        allowed = await sidecar.get("/v1.0/metadata", headers={"dapr-api-token": SIDECAR_TOKEN})

    assert refused.status_code == 401
    assert allowed.status_code == 200


async def test_events_and_the_apps_own_sidecar_calls_carry_their_tokens(
    guarded: RunningWorker, db: Database
) -> None:
    order = f"o-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=guarded.sidecar_url, timeout=10) as sidecar:
        published = await sidecar.post(
            "/v1.0/publish/pubsub/domain-events",
            json={"orderId": order},
            headers={"dapr-api-token": SIDECAR_TOKEN},
        )
    assert published.status_code == 204, published.text
    # The app requires APP_API_TOKEN: the event is stored only if daprd sent it.
    await eventually(
        lambda: db["domain_events"].find_one({"data.orderId": order}),
        what="the event delivered with the app token",
    )

    async with guarded.api() as api:
        schedule = await api.put(
            "/api/schedules/tokens-once",
            json={"job": "heartbeat", "cron": "@every 1s"},
        )
        assert schedule.status_code == 200, schedule.text  # the Jobs API took the app's token
        await api.delete("/api/schedules/tokens-once")

    async def three_ticks() -> bool:
        return await db["job_runs"].count_documents({"job": "scale_tick"}) >= 3

    await eventually(three_ticks, within=30, what="cron ticks")
    # Each tick was claimed through the TickCoordinator actor, a call the app makes to its
    # sidecar with the token: had the sidecar refused it, the app would have said so.
    messages = [line["message"] for line in guarded.app_log_lines()]
    assert "worker started" in messages
    assert not [m for m in messages if "unavailable" in m]
