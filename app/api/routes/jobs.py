"""The registered workers, and manual triggers."""

from datetime import datetime
from typing import Annotated

from fastapi import Body, Query, Response, status

from app.api.deps import operator_router
from app.api.schemas import Accepted, BackfillOut, JobOut, TriggerIn, problems
from app.operations.actor import API_CALLER
from app.services import Actions, History, Workers

router = operator_router("/api/jobs", "jobs")


@router.get("")
async def list_jobs(history: History, workers: Workers) -> list[JobOut]:
    """Every registered worker with its kind, trigger and last run."""
    return [JobOut.of(job, await history.latest(job=job.name)) for job in workers]


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


@router.post("/{name}/pause", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404))
async def pause_job(name: str, actions: Actions) -> Response:
    """Pauses a cron-bound job: its ticks make no runs until it is resumed."""
    await actions.pause_job(name, API_CALLER)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{name}/resume", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404))
async def resume_job(name: str, actions: Actions) -> Response:
    """Resumes a paused cron-bound job."""
    await actions.resume_job(name, API_CALLER)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
