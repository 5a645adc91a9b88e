"""Schedules created at run time, through the Dapr Jobs API."""

from typing import Annotated

from fastapi import Path, Response, status

from app.api.deps import operator_router
from app.api.schemas import problems
from app.models.schedules import JobSchedule
from app.operations.actor import API_CALLER
from app.operations.schedule_request import ScheduleIn
from app.services import Actions, Schedules

router = operator_router("/api/schedules", "schedules")

# What the Dapr Jobs API accepts as a job name, and is safe in a URL path.
ScheduleName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]


@router.get("")
async def list_schedules(schedules: Schedules) -> list[JobSchedule]:
    """The schedules created through this API."""
    return await schedules.list()


@router.put("/{name}", responses=problems(404, 502))
async def put_schedule(name: ScheduleName, body: ScheduleIn, actions: Actions) -> JobSchedule:
    """Creates or replaces a schedule: the sidecar's scheduler fires the job by it."""
    return await actions.put_schedule(name, body, API_CALLER)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404, 502))
async def delete_schedule(name: ScheduleName, actions: Actions) -> Response:
    """Deletes a schedule: it fires no more."""
    await actions.delete_schedule(name, API_CALLER)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{name}/pause", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404, 502))
async def pause_schedule(name: ScheduleName, actions: Actions) -> Response:
    """Pauses a schedule: the sidecar's job is deleted, the schedule kept for resuming."""
    await actions.pause_schedule(name, API_CALLER)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{name}/resume", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404, 502))
async def resume_schedule(name: ScheduleName, actions: Actions) -> Response:
    """Resumes a paused schedule: the sidecar's job is created again."""
    await actions.resume_schedule(name, API_CALLER)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
