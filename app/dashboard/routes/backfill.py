"""Backfill from the Schedules page: a dry run that lists the ticks of a range and which lack a
run, then the backfill, confirmed there."""

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import Response

from app.core.errors import Refused
from app.dashboard.actions import Done, act
from app.dashboard.deps import ActingSession, CurrentSession
from app.dashboard.pages import back_to, client_of, render
from app.services import Actions

router = APIRouter()
BACK = "/dashboard/schedules"
# The missing ticks a dry run lists by name (it counts them all).
LISTED = 20


def utc_time(value: str) -> datetime:
    """A time as the page's inputs give it (`datetime-local`: no zone, meant as UTC)."""
    moment = datetime.fromisoformat(value.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/jobs/{job}/backfill")
async def confirm_backfill(
    job: str,
    *,
    request: Request,
    session: CurrentSession,
    actions: Actions,
    since: Annotated[str, Query(alias="from")] = "",
    until: Annotated[str, Query(alias="to")] = "",
) -> Response:
    """The dry run: the job's ticks in the range, those that lack a run, and a form to make
    them."""
    try:
        start, end = utc_time(since), utc_time(until)
        done = await actions.backfill(
            job, since=start, until=end, dry_run=True, actor=session.actor(client_of(request))
        )
    except (Refused, ValueError) as refused:
        return back_to(BACK, problem=f"backfill of {job}: {refused}")
    return render(
        request,
        "backfill_confirm.html",
        session,
        page="schedules",
        job=job,
        since=start,
        until=end,
        done=done,
        listed=done.missing[:LISTED],
        action=f"/dashboard/jobs/{quote(job, safe='')}/backfill",
    )


@router.post("/jobs/{job}/backfill")
async def backfill_job(
    job: str,
    *,
    request: Request,
    session: ActingSession,
    actions: Actions,
    since: Annotated[str, Form(alias="from")],
    until: Annotated[str, Form(alias="to")],
) -> Response:
    """Makes the runs: confirmed on the dry-run page."""

    async def make() -> Done:
        try:
            start, end = utc_time(since), utc_time(until)
        except ValueError as exc:
            return Done(f"backfill of {job} not done: {exc}")
        done = await actions.backfill(
            job, since=start, until=end, dry_run=False, actor=session.actor(client_of(request))
        )
        return Done(f"backfill of {job}: {len(done.made)} runs made")

    return await act(request, make, back=BACK)
