"""Login and logout.

Wrong tokens are counted per client address and per name on every instance together
(`LoginFailures`); once either has spent its allowance, its logins are refused (429) until its
window ends, whatever token they carry. A logout revokes the session id in MongoDB, so the old
cookie opens nothing on any instance."""

import math
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from loguru import logger
from starlette.responses import Response

from app.core.clock import utc_now
from app.dashboard.deps import sessions_of, set_session_cookie
from app.dashboard.pages import back_to, client_of, render
from app.dashboard.session import COOKIE
from app.services import FailedLogins, Revocations

router = APIRouter()


def _safe_next(next_path: str | None) -> str:
    if next_path and next_path.startswith("/dashboard") and "//" not in next_path:
        return next_path
    return "/dashboard"


@router.get("/login")
async def show_login(request: Request, next: str | None = None) -> Response:
    """The login form: a name for the audit log, and the operator or viewer token."""
    return render(request, "login.html", None, page="login", next=_safe_next(next))


@router.post("/login")
async def log_in(
    request: Request,
    failed_logins: FailedLogins,
    token: Annotated[str, Form()],
    name: Annotated[str, Form(max_length=80)] = "",
    next: Annotated[str, Form()] = "/dashboard",
) -> Response:
    """Checks the token; a signed session cookie from then on."""
    sessions = sessions_of(request)
    client = client_of(request) or "unknown"
    name = name.strip()
    keys = [f"address:{client}", f"name:{name.lower()}"]
    log = logger.bind(client=client, name=name)
    now = utc_now()
    lockout = await failed_logins.lockout(keys, now)
    if lockout is not None:
        minutes = math.ceil((lockout.until - now) / timedelta(minutes=1))
        log.bind(locked=lockout.key).warning("dashboard login refused: too many wrong tokens")
        return _login_refused(
            request,
            next,
            f"Too many wrong tokens from here or under this name: try again in {minutes} min.",
            status_code=429,
            headers={"Retry-After": str(max(1, int((lockout.until - now).total_seconds())))},
        )
    role = sessions.role_of_token(token)
    if role is None:
        await failed_logins.count(keys, now)
        log.warning("dashboard login refused: wrong token")
        return _login_refused(
            request, next, "That token is not the operator's or the viewer's.", status_code=401
        )
    await failed_logins.clear(keys)
    _, cookie = sessions.issue(role=role, name=name or role)
    log.bind(role=role).info("dashboard login")
    response = back_to(_safe_next(next))
    set_session_cookie(response, request, cookie, sessions.max_age_seconds)
    return response


def _login_refused(
    request: Request,
    next_path: str,
    problem: str,
    *,
    status_code: int,
    headers: dict[str, str] | None = None,
) -> Response:
    """The login form again, saying why the login was refused."""
    return render(
        request,
        "login.html",
        None,
        page="login",
        next=_safe_next(next_path),
        problem=problem,
        status_code=status_code,
        headers=headers,
    )


@router.post("/logout")
async def log_out(request: Request, revocations: Revocations) -> Response:
    """Ends this browser's session, on every instance."""
    sessions = sessions_of(request)
    session = sessions.read(request.cookies.get(COOKIE))
    if session is not None:
        until = utc_now() + timedelta(seconds=sessions.max_age_seconds)
        await revocations.revoke(session.sid, until=until)
        logger.bind(name=session.name, client=client_of(request)).info("dashboard logout")
    response = back_to("/dashboard/login")
    response.delete_cookie(COOKIE, path="/dashboard", httponly=True, samesite="strict")
    return response
