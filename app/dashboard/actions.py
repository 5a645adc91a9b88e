"""The dashboard's actions show an operator verb's refusal (`Refused`) as a message on the page."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import Request
from starlette.responses import Response

from app.core.errors import Refused
from app.dashboard.pages import back_to


@dataclass(frozen=True)
class Done:
    notice: str
    go_to: str | None = None  # the page to show next, if not the one the form was on


async def act(
    request: Request, action: Callable[[], Awaitable[Done]], *, back: str | None = None
) -> Response:
    """Runs `action`; back to `back` (or the page the form was on) with what it did, or why
    it was refused."""
    origin = f"{request.url.scheme}://{request.url.netloc}"
    referer = page_to_return_to(request.headers.get("referer", ""), origin)
    target = back or referer or "/dashboard"
    try:
        done = await action()
    except Refused as refused:
        return back_to(target, problem=str(refused))
    return back_to(done.go_to or target, notice=done.notice)


def page_to_return_to(referer: str, origin: str) -> str | None:
    """The dashboard page (path and query) a same-site referer names, without the notice or
    problem of an earlier action; None for another site or another part of the app."""
    parts = urlsplit(referer)
    if f"{parts.scheme}://{parts.netloc}" != origin:
        return None
    if parts.path != "/dashboard" and not parts.path.startswith("/dashboard/"):
        return None
    kept = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("notice", "problem")]
    return f"{parts.path}?{urlencode(kept)}" if kept else parts.path
