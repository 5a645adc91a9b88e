"""Login and logout."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from app.dashboard.deps import sessions_of, set_session_cookie
from app.dashboard.pages import back_to, render
from app.dashboard.session import COOKIE

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
    token: Annotated[str, Form()],
    name: Annotated[str, Form(max_length=80)] = "",
    next: Annotated[str, Form()] = "/dashboard",
) -> Response:
    """Checks the token; a signed session cookie from then on."""
    sessions = sessions_of(request)
    role = sessions.role_of_token(token)
    if role is None:
        return render(
            request,
            "login.html",
            None,
            page="login",
            next=_safe_next(next),
            problem="That token is not the operator's or the viewer's.",
            status_code=401,
        )
    _, cookie = sessions.issue(role=role, name=name.strip() or role)
    response = back_to(_safe_next(next))
    set_session_cookie(response, request, cookie, sessions.max_age_seconds)
    return response


@router.post("/logout")
async def log_out() -> Response:
    """Ends this browser's session."""
    response = back_to("/dashboard/login")
    response.delete_cookie(COOKIE, path="/dashboard")
    return response
