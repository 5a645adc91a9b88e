"""The registered workers, and manual triggers."""

from datetime import datetime
from typing import Annotated

from fastapi import Body, Query, Response, status

from app.api.deps import operator_router
from app.api.schemas import Accepted, BackfillOut, JobOut, TriggerIn, problems
from app.operations.actor import API_CALLER
from app.services import Actions, History, Pauses, Workers

router = operator_router("/api/jobs", "jobs")


@router.get("")
async def list_jobs(history: History, workers: Workers, pauses: Pauses) -> list[JobOut]:
    """Every registered worker with its kind, trigger, limits, pause and last run."""
    paused = await pauses.all()
    return [
        JobOut.of(job, await history.latest(job=job.name), paused.get(job.name)) for job in workers
    ]


@router.post("/{name}/trigger", status_code=status.HTTP_202_ACCEPTED, responses=problems(404))
async def trigger_job(
    name: str, actions: Actions, body: Annotated[TriggerIn | None, Body()] = None
) -> Accepted:
    """Starts a run of the job now (202 with its id); the payload is validated first."""
    run = await actions.trigger(name, body.payload if body else None, API_CALLER)
    return Accepted(run_id=run.id)


@router.post("/{name}/backfill", responses=problems(404, 422))
async def backfill_job(
    name: str,
    actions: Actions,
    since: Annotated[datetime, Query(alias="from", description="the first tick's time, ISO 8601")],
    until: Annotated[datetime, Query(alias="to", description="the last tick's time, ISO 8601")],
    dry_run: Annotated[bool, Query(description="list the ticks, make nothing")] = True,
) -> BackfillOut:
    """Runs for a scheduled job's ticks from `from` to `to` that have none (at most 3,600
    ticks); with `dry_run` (the default), which ticks there are and which lack a run."""
    done = await actions.backfill(name, since=since, until=until, dry_run=dry_run, actor=API_CALLER)
    return BackfillOut.of(done)


@router.post("/{name}/pause", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404, 409))
async def pause_job(
    name: str,
    actions: Actions,
    drop: Annotated[
        bool, Query(description="record the deliveries while paused as skipped runs")
    ] = False,
) -> Response:
    """Pauses a job until it is resumed: a cron binding's ticks make no runs (counted as
    skipped); an event handler's or queue processor's deliveries are stored as `pending` runs
    (held, reason "paused"), which start in order on resume, or, with `drop`, recorded as
    skipped runs. None of its waiting runs starts meanwhile. 409 for a job that has no binding
    and no topic."""
    await actions.pause_job(name, API_CALLER, drop=drop)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{name}/resume", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404))
async def resume_job(name: str, actions: Actions) -> Response:
    """Resumes a paused job: its runs that waited start, oldest first."""
    await actions.resume_job(name, API_CALLER)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
