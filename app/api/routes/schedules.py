"""Schedules created at run time, through the Dapr Jobs API."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Response, status

from app.api.deps import State, operator_auth
from app.api.schemas import OPERATOR_PROBLEMS, ScheduleIn, problems
from app.core.clock import utc_now
from app.models.schedules import JobSchedule

router = APIRouter(
    prefix="/api/schedules",
    tags=["schedules"],
    dependencies=[Depends(operator_auth)],
    responses=OPERATOR_PROBLEMS,
)

# What the Dapr Jobs API accepts as a job name, and is safe in a URL path.
ScheduleName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]


@router.get("")
async def list_schedules(state: State) -> list[JobSchedule]:
    """The schedules created through this API."""
    return await state.schedules.list()


@router.put("/{name}", responses=problems(404, 502))
async def put_schedule(name: ScheduleName, body: ScheduleIn, state: State) -> JobSchedule:
    """Creates or replaces a schedule: the sidecar's scheduler fires the job by it."""
    worker = state.dispatcher.worker(body.job)
    asked_at = utc_now()
    await state.sidecar.schedule_job(
        name,
        schedule=body.cron,
        due_time=body.due_time.isoformat() if body.due_time else None,
        data={"job": worker.name, "payload": body.payload},
    )
    return await state.schedules.upsert(
        name=name,
        job=worker.name,
        cron=body.cron,
        due_time=body.due_time,
        payload=body.payload,
        asked_at=asked_at,
    )


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404, 502))
async def delete_schedule(name: ScheduleName, state: State) -> Response:
    """Deletes a schedule: it fires no more."""
    if await state.schedules.get(name) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no schedule named {name!r}")
    await state.sidecar.delete_job(name)
    await state.schedules.delete(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
