"""The audit log of operator actions, newest first."""

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.dashboard.deps import CurrentSession
from app.dashboard.pages import render
from app.services import Audit

router = APIRouter()
PAGE_SIZE = 50


@router.get("/audit")
async def list_audit(
    request: Request, session: CurrentSession, audit: Audit, before: str | None = None
) -> Response:
    """Who did what, when, on which runs."""
    entries = await audit.newest(limit=PAGE_SIZE, before=before)
    more = entries[-1].id if len(entries) == PAGE_SIZE else None
    return render(request, "audit.html", session, page="audit", entries=entries, more=more)
