"""The registered workers, and manual triggers."""

from typing import Annotated

from fastapi import APIRouter, Body, Depends, status

from app.api.deps import State, operator_auth
from app.api.schemas import OPERATOR_PROBLEMS, Accepted, JobOut, TriggerIn, problems

router = APIRouter(
    prefix="/api/jobs",
    tags=["jobs"],
    dependencies=[Depends(operator_auth)],
    responses=OPERATOR_PROBLEMS,
)


@router.get("")
async def list_jobs(state: State) -> list[JobOut]:
    """Every registered worker with its kind, trigger and last run."""
    return [
        JobOut.of(worker, await state.runs.latest(job=worker.name)) for worker in state.registry
    ]


@router.post("/{name}/trigger", status_code=status.HTTP_202_ACCEPTED, responses=problems(404))
async def trigger_job(
    name: str, state: State, body: Annotated[TriggerIn | None, Body()] = None
) -> Accepted:
    """Starts a run of the job now (202 with its id); the payload is validated first."""
    worker = state.dispatcher.worker(name)
    submission = await state.dispatcher.trigger(worker, body.payload if body else None)
    state.poller.wake()
    assert submission.run is not None, "a manual trigger always makes a run"
    return Accepted(run_id=submission.run.id)
