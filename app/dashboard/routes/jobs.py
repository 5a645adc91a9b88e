"""Every registered worker with its kind, trigger, limits, last run and success rate."""

import json
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from app.core.clock import utc_now
from app.dashboard.actions import Done, act
from app.dashboard.deps import ActingSession, CurrentSession
from app.dashboard.overview import job_figures
from app.dashboard.pages import client_of, render
from app.services import Actions, History, Pauses, Stats, Workers

router = APIRouter()


@router.get("/jobs")
async def list_jobs(
    request: Request,
    session: CurrentSession,
    *,
    workers: Workers,
    history: History,
    stats: Stats,
    pauses: Pauses,
) -> Response:
    """The registry, with the last day's figures of each worker and its pause."""
    figures = {f.job: f for f in await job_figures(stats, window="day", now=utc_now())}
    paused = await pauses.all()
    rows = [
        (job, await history.latest(job=job.name), figures.get(job.name), paused.get(job.name))
        for job in workers
    ]
    return render(request, "jobs.html", session, page="jobs", rows=rows)


@router.post("/jobs/{name}/pause")
async def pause_job(
    name: str,
    request: Request,
    session: ActingSession,
    actions: Actions,
    drop: Annotated[str, Form()] = "",
) -> Response:
    """Pauses the job: its deliveries wait as runs (or, with `drop`, are skipped)."""

    async def pause() -> Done:
        await actions.pause_job(name, session.actor(client_of(request)), drop=bool(drop))
        kept = "recorded as skipped" if drop else "kept as runs that wait for the resume"
        return Done(f"{name} paused: what comes for it is {kept}")

    return await act(request, pause, back="/dashboard/jobs")


@router.post("/jobs/{name}/resume")
async def resume_job(
    name: str, request: Request, session: ActingSession, actions: Actions
) -> Response:
    """Resumes the job: its runs that waited start, oldest first."""

    async def resume() -> Done:
        await actions.resume_job(name, session.actor(client_of(request)))
        return Done(f"{name} resumed")

    return await act(request, resume, back="/dashboard/jobs")


@router.post("/jobs/{name}/trigger")
async def trigger_job(
    name: str,
    request: Request,
    session: ActingSession,
    actions: Actions,
    payload: Annotated[str, Form()] = "",
) -> Response:
    """Starts a run of the job now, with the payload given (JSON) or none."""

    async def trigger() -> Done:
        try:
            data = json.loads(payload) if payload.strip() else None
        except ValueError as exc:
            return Done(f"not triggered: the payload is not JSON ({exc})")
        run = await actions.trigger(name, data, session.actor(client_of(request)))
        return Done(f"{name} triggered: run {run.id}", go_to=f"/dashboard/runs/{run.id}")

    return await act(request, trigger, back="/dashboard/jobs")
