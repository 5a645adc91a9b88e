"""The operator's dashboard at `/dashboard`: server-rendered pages (Jinja2, no JavaScript build
step), live parts over server-sent events, static assets served by the app."""

from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from app.core.config import Settings
from app.dashboard.deps import ActionRefused, LoginRequired
from app.dashboard.routes import (
    audit,
    auth,
    backfill,
    failures,
    jobs,
    overview,
    runs,
    schedules,
)
from app.dashboard.session import Sessions
from app.dashboard.templating import HERE, templates


def mount_dashboard(app: FastAPI, settings: Settings) -> None:
    app.state.dashboard_sessions = Sessions(settings.api)
    for module in (auth, overview, runs, failures, schedules, backfill, jobs, audit):
        app.include_router(module.router, prefix="/dashboard", include_in_schema=False)
    app.mount("/dashboard/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if request.headers.get("accept", "").startswith("text/event-stream"):
            return JSONResponse({"detail": "login required"}, 401)
        return RedirectResponse(
            f"/dashboard/login?{urlencode({'next': exc.next_path})}", status_code=303
        )

    @app.exception_handler(ActionRefused)
    async def action_refused(request: Request, exc: ActionRefused) -> Response:
        return templates.TemplateResponse(
            request, "refused.html", {"reason": str(exc), "session": None, "nav": []}, 403
        )
