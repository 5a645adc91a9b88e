"""The dead set grouped by failure, requeue one, or all that match with a dry-run count first."""

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from app.dashboard.actions import Done, act
from app.dashboard.deps import ActingSession, CurrentSession
from app.dashboard.pages import client_of, render
from app.repositories.run_history import DEAD_SET_PAGE_SCAN
from app.services import Actions, History, Workers

router = APIRouter()


@router.get("/failures")
async def list_failures(
    request: Request,
    session: CurrentSession,
    history: History,
    workers: Workers,
    job: str | None = None,
) -> Response:
    """Failure groups (error type and normalised message) with counts, first and last seen."""
    job = job or None
    groups = await history.failure_groups(job=job)
    newest = await history.list_runs(job=job, limit=20, dead_set=True)
    return render(
        request,
        "failures.html",
        session,
        page="failures",
        groups=groups,
        scan=DEAD_SET_PAGE_SCAN,
        newest=newest,
        job=job or "",
        jobs=sorted(w.name for w in workers),
    )


@router.get("/failures/requeue")
async def confirm_requeue(
    request: Request,
    session: CurrentSession,
    history: History,
    job: str | None = None,
    fingerprint: str | None = None,
) -> Response:
    """The dry run: how many dead runs the filter matches, and a form to confirm."""
    job, fingerprint = job or None, fingerprint or None
    ids = await history.dead_ids_matching(job=job, fingerprint=fingerprint)
    groups = await history.failure_groups(job=job)
    group = next((g for g in groups if g.fingerprint == fingerprint), None)
    return render(
        request,
        "requeue_confirm.html",
        session,
        page="failures",
        matching=len(ids),
        job=job or "",
        fingerprint=fingerprint or "",
        group=group,
    )


@router.post("/failures/requeue")
async def requeue_matching(
    request: Request,
    session: ActingSession,
    actions: Actions,
    job: Annotated[str, Form()] = "",
    fingerprint: Annotated[str, Form()] = "",
) -> Response:
    """Requeues every dead run that matches: confirmed on the dry-run page."""

    async def requeue() -> Done:
        done = await actions.requeue_matching(
            job=job or None,
            fingerprint=fingerprint or None,
            actor=session.actor(client_of(request)),
        )
        skipped = f", {len(done.skipped)} skipped" if done.skipped else ""
        return Done(f"{len(done.runs)} dead runs requeued{skipped}")

    back = "/dashboard/failures" + (f"?{urlencode({'job': job})}" if job else "")
    return await act(request, requeue, back=back)
