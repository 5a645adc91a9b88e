"""The dead set: runs that used up their attempts, with their payloads."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from app.api.deps import State, operator_auth
from app.api.schemas import OPERATOR_PROBLEMS, Accepted, DeadLetterOut, Page, problems

router = APIRouter(
    prefix="/api/dead-letters",
    tags=["dead letters"],
    dependencies=[Depends(operator_auth)],
    responses=OPERATOR_PROBLEMS,
)


@router.get("", responses=problems(404))
async def list_dead_letters(
    state: State,
    job: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: str | None = None,
) -> Page[DeadLetterOut]:
    """Dead runs not requeued yet, newest first."""
    runs = await state.runs.list_runs(job=job, limit=limit, before=before, dead_set=True)
    return Page(
        items=[DeadLetterOut.of(r) for r in runs],
        next=runs[-1].id if len(runs) == limit else None,
    )


@router.post(
    "/{dead_letter_id}/requeue",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(404, 409),
)
async def requeue_dead_letter(dead_letter_id: str, state: State) -> Accepted:
    """Runs the dead run's payload again as a new run; the dead one leaves the dead set."""
    run = await state.dispatcher.requeue(dead_letter_id)
    state.poller.wake()
    return Accepted(run_id=run.id)
