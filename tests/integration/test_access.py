"""One gate for every route: with both tokens set, nothing but the probes answers a caller
without its token. The test walks `app.routes`, so a route added later cannot slip through."""

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from app.api.access import Audience, audience_of
from app.core.config import Settings
from app.main import create_app
from tests.support import until_started

SIDECAR_TOKEN = "sidecar-s3cret"
OPERATOR_TOKEN = "operator-s3cret"


@pytest.fixture
def guarded_settings(settings: Settings) -> Settings:
    """Production (the image's default) with both tokens: what a deployment serves."""
    return settings.model_copy(
        update={
            "app": settings.app.model_copy(update={"environment": "Production"}),
            "dapr": settings.dapr.model_copy(update={"app_api_token": SIDECAR_TOKEN}),
            "api": settings.api.model_copy(update={"operator_token": OPERATOR_TOKEN}),
        }
    )


@pytest.fixture
async def guarded(guarded_settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    app = create_app(guarded_settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            await until_started(client)
            yield client, app


def every_route(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, included routers flattened."""
    calls = []
    for route in iter_route_contexts(app.routes):
        assert route.path is not None, f"{route!r}: a route without a path"
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        calls += [(method, path) for method in sorted(route.methods or {"GET"})]
    return calls


async def test_every_route_but_the_probes_refuses_a_caller_without_its_token(
    guarded: tuple[httpx.AsyncClient, FastAPI],
) -> None:
    client, app = guarded
    calls = every_route(app)
    assert len(calls) > 25

    answered = {}
    for method, path in calls:
        response = await client.request(method, path)
        answered[f"{method} {path}"] = (
            response.status_code,
            response.headers.get("location", ""),
        )

    open_routes = {call for call, (status, _) in answered.items() if status != 401}
    # The dashboard sends a browser without a session to its login page instead.
    to_login = {
        call
        for call, (status, location) in answered.items()
        if status == 303 and location.startswith("/dashboard/login")
    }
    assert {call.split()[1] for call in open_routes - to_login} == {
        "/healthz",
        "/readyz",
        "/dashboard/login",
        "/dashboard/static",
    }
    assert {call.split()[1] for call in to_login} >= {
        "/dashboard",
        "/dashboard/runs/x/x",
    }  # x/x: /runs/{run_id}/{action}


async def test_a_token_opens_only_its_own_audience(
    guarded: tuple[httpx.AsyncClient, FastAPI],
) -> None:
    client, _ = guarded
    sidecar = {"dapr-api-token": SIDECAR_TOKEN}
    operator = {"authorization": f"Bearer {OPERATOR_TOKEN}"}

    assert (await client.get("/dapr/subscribe", headers=sidecar)).status_code == 200
    assert (await client.get("/dapr/subscribe", headers=operator)).status_code == 401
    assert (await client.get("/api/jobs", headers=operator)).status_code == 200
    assert (await client.get("/api/jobs", headers=sidecar)).status_code == 401
    assert (await client.get("/openapi.json", headers=operator)).status_code == 200
    wrong = {"authorization": "Bearer operator-s3cre"}
    assert (await client.get("/api/jobs", headers=wrong)).status_code == 401
    assert (await client.post("/heartbeat-cron", headers=operator)).status_code == 401
    bulk = "/bulk-events/pubsub/batched-items"
    assert (await client.post(bulk, json={"entries": []}, headers=operator)).status_code == 401
    assert (await client.post(bulk, json={"entries": []}, headers=sidecar)).json() == {
        "statuses": []
    }


def test_every_path_has_exactly_one_audience() -> None:
    bindings = frozenset({"/heartbeat-cron"})

    assert audience_of("/healthz", bindings) is Audience.PUBLIC
    assert audience_of("/actors/RunLease/r1/method/Acquire", bindings) is Audience.SIDECAR
    assert audience_of("/heartbeat-cron", bindings) is Audience.SIDECAR
    assert audience_of("/bulk-events/pubsub/work-items", bindings) is Audience.SIDECAR
    assert audience_of("/api/runs", bindings) is Audience.OPERATOR
    assert audience_of("/no/such/route", bindings) is Audience.OPERATOR
    assert audience_of("/dashboard", bindings) is Audience.DASHBOARD
    assert audience_of("/dashboard/runs/x", bindings) is Audience.DASHBOARD
    assert audience_of("/dashboardx", bindings) is Audience.OPERATOR
