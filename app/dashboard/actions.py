"""The dashboard's actions map the operator actions' refusals to a message on the page."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request
from starlette.responses import Response

from app.api.actions import UnknownSchedule
from app.dapr.sidecar import SidecarError
from app.dashboard.pages import back_to
from app.dispatch.errors import DispatchError
from app.repositories.runs import UnknownRun

REFUSALS = (DispatchError, UnknownRun, UnknownSchedule, SidecarError)


@dataclass(frozen=True)
class Done:
    notice: str
    go_to: str | None = None  # the page to show next, if not the one the form was on


async def act(
    request: Request, action: Callable[[], Awaitable[Done]], *, back: str | None = None
) -> Response:
    """Runs `action`; back to `back` (or the page the form was on) with what it did, or why
    it was refused."""
    target = back or _same_site_referer(request) or "/dashboard"
    try:
        done = await action()
    except REFUSALS as refused:
        return back_to(target, problem=str(refused))
    return back_to(done.go_to or target, notice=done.notice)


def _same_site_referer(request: Request) -> str | None:
    referer = request.headers.get("referer", "")
    origin = f"{request.url.scheme}://{request.url.netloc}"
    if not referer.startswith(origin + "/dashboard"):
        return None
    path = referer[len(origin) :]
    # The notice of an earlier action is not carried on.
    return path.split("?notice=")[0].split("&notice=")[0].split("?problem=")[0]
