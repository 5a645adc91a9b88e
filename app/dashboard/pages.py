"""Rendering a page, and answering an action, the same way on every dashboard route."""

from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from app.dashboard.deps import sessions_of, set_session_cookie
from app.dashboard.session import Session
from app.dashboard.templating import templates

NAV = [
    ("overview", "/dashboard", "Overview"),
    ("runs", "/dashboard/runs", "Runs"),
    ("failures", "/dashboard/failures", "Failures"),
    ("schedules", "/dashboard/schedules", "Schedules"),
    ("jobs", "/dashboard/jobs", "Jobs"),
    ("audit", "/dashboard/audit", "Audit log"),
]


def render(
    request: Request,
    template: str,
    session: Session | None,
    *,
    page: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response:
    sessions = sessions_of(request)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "session": session,
            "csrf": sessions.csrf_of(session) if session else "",
            "open_dashboard": sessions.open,
            "nav": NAV,
            "page": page,
            "notice": request.query_params.get("notice"),
            "problem": request.query_params.get("problem"),
            **context,
        },
        status_code=status_code,
        headers=headers,
    )
    fresh = getattr(request.state, "new_session_cookie", None)
    if fresh is not None:
        set_session_cookie(response, request, fresh, sessions.max_age_seconds)
    return response


def back_to(path: str, *, notice: str | None = None, problem: str | None = None) -> Response:
    """After an action: the page to show (303, so that a reload does not post again)."""
    query = {k: v for k, v in (("notice", notice), ("problem", problem)) if v}
    separator = "&" if "?" in path else "?"
    target = f"{path}{separator}{urlencode(query)}" if query else path
    return RedirectResponse(target, status_code=303)


def client_of(request: Request) -> str | None:
    return request.client.host if request.client else None
