"""Who may see and do what on the dashboard: a login with the operator or the viewer token, a
signed session cookie, a CSRF token on every action; open (an operator session for every
browser) only when no operator token is set."""

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from app.core.config import Settings
from app.dashboard.session import COOKIE
from tests.integration.conftest import serve
from tests.support import run_reaching

OPERATOR_TOKEN = "operator-s3cret"
VIEWER_TOKEN = "viewer-s3cret"


def with_tokens(settings: Settings, **tokens: str) -> Settings:
    return settings.model_copy(update={"api": settings.api.model_copy(update=tokens)})


@pytest.fixture
async def guarded(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    tokens = {"operator_token": OPERATOR_TOKEN, "viewer_token": VIEWER_TOKEN}
    async with serve(with_tokens(settings, **tokens)) as client:
        yield client


async def log_in(client: httpx.AsyncClient, token: str, name: str = "tester") -> None:
    response = await client.post("/dashboard/login", data={"token": token, "name": name})
    assert response.status_code == 303, response.text
    assert COOKIE in response.cookies


async def csrf_of(client: httpx.AsyncClient, page: str = "/dashboard/jobs") -> str:
    html = (await client.get(page)).text
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def deferred_run(client: httpx.AsyncClient) -> str:
    """A run that waits an hour for its retry: it can be cancelled."""
    response = await client.post(
        "/api/jobs/deferring_job/trigger", headers={"authorization": f"Bearer {OPERATOR_TOKEN}"}
    )
    run_id: str = response.json()["run_id"]
    api = httpx.AsyncClient(
        transport=client._transport,
        base_url=client.base_url,
        headers={"authorization": f"Bearer {OPERATOR_TOKEN}"},
    )
    async with api:
        await run_reaching(api, run_id, {"failed"})
    return run_id


async def test_without_a_session_every_page_sends_the_browser_to_the_login(
    guarded: httpx.AsyncClient,
) -> None:
    for path in ["/dashboard", "/dashboard/runs?job=x", "/dashboard/failures", "/dashboard/audit"]:
        response = await guarded.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/dashboard/login?next=")
    assert (await guarded.get("/dashboard/login")).status_code == 200
    wrong = await guarded.post("/dashboard/login", data={"token": "guess"})
    assert wrong.status_code == 401
    assert COOKIE not in wrong.cookies


async def test_a_forged_or_stale_cookie_is_no_session(
    guarded: httpx.AsyncClient, settings: Settings
) -> None:
    await log_in(guarded, OPERATOR_TOKEN)
    cookie = guarded.cookies[COOKIE]
    assert (await guarded.get("/dashboard")).status_code == 200
    guarded.cookies.set(COOKIE, cookie[:-2] + "xx", path="/dashboard")
    assert (await guarded.get("/dashboard")).status_code == 303

    rotated = with_tokens(settings, operator_token="a-new-operator-token")
    async with serve(rotated) as other:
        other.cookies.set(COOKIE, cookie, path="/dashboard")
        assert (await other.get("/dashboard")).status_code == 303, "a rotated token ends sessions"


async def test_a_viewer_sees_every_page_and_cannot_act(guarded: httpx.AsyncClient) -> None:
    run_id = await deferred_run(guarded)
    await log_in(guarded, VIEWER_TOKEN, name="auditor")
    for path in ["/dashboard", "/dashboard/runs", f"/dashboard/runs/{run_id}", "/dashboard/jobs"]:
        page = await guarded.get(path)
        assert page.status_code == 200, path
        assert "Cancel</button>" not in page.text
        assert "Trigger</button>" not in page.text
    refused = await guarded.post(f"/dashboard/runs/{run_id}/cancel", data={"csrf": "x"})
    assert refused.status_code == 403
    assert "read-only" in refused.text
    bearer = {"authorization": f"Bearer {VIEWER_TOKEN}"}
    assert (await guarded.get("/api/jobs", headers=bearer)).status_code == 200
    trigger = await guarded.post("/api/jobs/doomed_job/trigger", headers=bearer)
    assert trigger.status_code == 403
    run = await guarded.get(f"/api/runs/{run_id}", headers=bearer)
    assert run.json()["status"] == "failed"


async def test_an_action_needs_the_sessions_csrf_token(guarded: httpx.AsyncClient) -> None:
    run_id = await deferred_run(guarded)
    await log_in(guarded, OPERATOR_TOKEN, name="alice")
    without = await guarded.post(f"/dashboard/runs/{run_id}/cancel")
    assert without.status_code == 403
    forged = await guarded.post(f"/dashboard/runs/{run_id}/cancel", data={"csrf": "0" * 64})
    assert forged.status_code == 403

    csrf = await csrf_of(guarded, f"/dashboard/runs/{run_id}")
    done = await guarded.post(f"/dashboard/runs/{run_id}/cancel", data={"csrf": csrf})
    assert done.status_code == 303
    assert "notice=" in done.headers["location"]
    bearer = {"authorization": f"Bearer {OPERATOR_TOKEN}"}
    run = (await guarded.get(f"/api/runs/{run_id}", headers=bearer)).json()
    assert run["status"] == "cancelled"
    audit = (await guarded.get("/dashboard/audit")).text
    assert "alice" in audit
    assert f'href="/dashboard/runs/{run_id}"' in audit


async def test_an_open_dashboard_gives_each_browser_an_operator_session(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get("/dashboard")
    assert first.status_code == 200
    assert COOKIE in first.cookies
    assert "open dashboard" in first.text
    # Open, yet not to other sites' forms: an action still needs this session's CSRF token.
    trigger = await client.post("/dashboard/jobs/doomed_job/trigger")
    assert trigger.status_code == 403
    csrf = await csrf_of(client)
    done = await client.post("/dashboard/jobs/doomed_job/trigger", data={"csrf": csrf})
    assert done.status_code == 303
    assert done.headers["location"].startswith("/dashboard/runs/")


def from_address(client: httpx.AsyncClient, address: str) -> httpx.AsyncClient:
    """Another browser on the same app, from another client address."""
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=transport.app, client=(address, 40000)),
        base_url=client.base_url,
    )


async def test_wrong_tokens_lock_out_an_address_and_a_name_even_with_the_right_token(
    guarded: httpx.AsyncClient,
) -> None:
    # The default allowance: 5 wrong tokens per address and per name in 15 minutes.
    for _ in range(5):
        wrong = await guarded.post("/dashboard/login", data={"token": "guess", "name": "mallory"})
        assert wrong.status_code == 401
    locked = await guarded.post(
        "/dashboard/login", data={"token": OPERATOR_TOKEN, "name": "someone-else"}
    )
    assert locked.status_code == 429, "this address spent its allowance"
    assert COOKIE not in locked.cookies
    assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
    assert "Too many wrong tokens" in locked.text

    async with from_address(guarded, "10.1.2.3") as elsewhere:
        same_name = await elsewhere.post(
            "/dashboard/login", data={"token": OPERATOR_TOKEN, "name": "Mallory"}
        )
        assert same_name.status_code == 429, "the name spent its allowance, wherever it is used"
        await log_in(elsewhere, OPERATOR_TOKEN, name="alice")


async def test_a_right_token_clears_the_count_of_earlier_typos(guarded: httpx.AsyncClient) -> None:
    for _ in range(4):
        wrong = await guarded.post("/dashboard/login", data={"token": "typo", "name": "bob"})
        assert wrong.status_code == 401
    await log_in(guarded, OPERATOR_TOKEN, name="bob")
    for _ in range(4):
        wrong = await guarded.post("/dashboard/login", data={"token": "typo", "name": "bob"})
        assert wrong.status_code == 401, "the count began again after the login"


async def test_logout_ends_the_session_on_every_instance(
    guarded: httpx.AsyncClient, settings: Settings
) -> None:
    tokens = {"operator_token": OPERATOR_TOKEN, "viewer_token": VIEWER_TOKEN}
    async with serve(with_tokens(settings, **tokens)) as other_instance:
        await log_in(guarded, OPERATOR_TOKEN)
        cookie = guarded.cookies[COOKIE]
        other_instance.cookies.set(COOKIE, cookie, path="/dashboard")
        assert (await other_instance.get("/dashboard")).status_code == 200

        logged_out = await guarded.post("/dashboard/logout")
        assert logged_out.status_code == 303
        assert COOKIE not in guarded.cookies

        guarded.cookies.set(COOKIE, cookie, path="/dashboard")
        for client in (guarded, other_instance):
            reused = await client.get("/dashboard")
            assert reused.status_code == 303, "the old cookie is refused after logout"
            assert reused.headers["location"].startswith("/dashboard/login")


async def test_the_session_cookie_is_http_only_strict_and_secure_over_https(
    settings: Settings,
) -> None:
    tokens = {"operator_token": OPERATOR_TOKEN}
    async with serve(with_tokens(settings, **tokens)) as plain:
        response = await plain.post("/dashboard/login", data={"token": OPERATOR_TOKEN})
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert "secure" not in cookie.replace("samesite", "")
        secure = httpx.AsyncClient(transport=plain._transport, base_url="https://worker")
        async with secure:
            response = await secure.post("/dashboard/login", data={"token": OPERATOR_TOKEN})
        assert "; secure" in response.headers["set-cookie"].lower()
