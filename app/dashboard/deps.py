"""The dashboard's dependencies: the session of the browser, and the checks an action needs."""

from typing import Annotated

from fastapi import Depends, Request, Response

from app.core.errors import AevatarError, Refused
from app.dashboard.session import COOKIE, Session, Sessions
from app.services import revocations_of


class LoginRequired(AevatarError):
    """No valid session: the browser is sent to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__("login required")
        self.next_path = next_path


class ActionRefused(Refused):
    """A viewer's action, or a form without the session's CSRF token: 403 (the dashboard
    answers it with a page of its own)."""

    status_code = 403


def sessions_of(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.dashboard_sessions
    return sessions


async def current_session(request: Request) -> Session:
    sessions = sessions_of(request)
    session = sessions.read(request.cookies.get(COOKIE))
    if session is not None and not await _revoked(request, session):
        return session
    if not sessions.open:
        query = f"?{request.url.query}" if request.url.query else ""
        raise LoginRequired(request.url.path + query)
    session, cookie = sessions.issue(role="operator", name="anonymous")
    # The page rendered for this request sets it (`app.dashboard.pages.render`).
    request.state.new_session_cookie = cookie
    return session


async def _revoked(request: Request, session: Session) -> bool:
    revocations = await revocations_of(request)
    return await revocations.is_revoked(session.sid)


def set_session_cookie(response: Response, request: Request, value: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/dashboard",
    )


CurrentSession = Annotated[Session, Depends(current_session)]


async def acting_session(request: Request, session: CurrentSession) -> Session:
    """An operator's session, on a POST carrying its CSRF token."""
    if session.role != "operator":
        raise ActionRefused("this login is read-only (viewer token): it cannot act")
    form = await request.form()
    given = form.get("csrf")
    if not isinstance(given, str) or not sessions_of(request).csrf_valid(session, given):
        raise ActionRefused("the form's CSRF token is missing or stale: reload the page")
    return session


ActingSession = Annotated[Session, Depends(acting_session)]
