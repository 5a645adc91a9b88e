"""The dead set: runs that used up their attempts, with their payloads."""

from typing import Annotated

from fastapi import Query, status

from app.api.deps import operator_router
from app.api.schemas import (
    Accepted,
    DeadLetterOut,
    FailureGroupOut,
    Page,
    RequeuedOut,
    problems,
)
from app.operations.actor import API_CALLER
from app.services import Actions, History

router = operator_router("/api/dead-letters", "dead letters")


@router.get("", responses=problems(404))
async def list_dead_letters(
    history: History,
    job: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: str | None = None,
) -> Page[DeadLetterOut]:
    """Dead runs not requeued yet, newest first."""
    runs = await history.list_runs(job=job, limit=limit, before=before, dead_set=True)
    return Page(
        items=[DeadLetterOut.of(r) for r in runs],
        next=runs[-1].id if len(runs) == limit else None,
    )


@router.get("/groups")
async def list_failure_groups(history: History, job: str | None = None) -> list[FailureGroupOut]:
    """The dead set grouped by failure: error type and message with ids and numbers taken out."""
    return [FailureGroupOut.of(group) for group in await history.failure_groups(job=job)]


@router.post("/requeue", responses=problems(404))
async def requeue_matching(
    history: History,
    actions: Actions,
    job: str | None = None,
    fingerprint: Annotated[
        str | None,
        Query(description="a failure group's fingerprint (GET /api/dead-letters/groups)"),
    ] = None,
    dry_run: Annotated[bool, Query(description="count, requeue nothing")] = True,
) -> RequeuedOut:
    """Requeues every dead run matching the filter; with `dry_run` (the default), counts them."""
    if dry_run:
        ids = await history.dead_ids_matching(job=job, fingerprint=fingerprint)
        return RequeuedOut(matching=len(ids), requeued=[], skipped={})
    done = await actions.requeue_matching(job=job, fingerprint=fingerprint, actor=API_CALLER)
    return RequeuedOut(
        matching=len(done.runs) + len(done.skipped),
        requeued=[run.id for run in done.runs],
        skipped=done.skipped,
    )


@router.post(
    "/{dead_letter_id}/requeue",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(404, 409),
)
async def requeue_dead_letter(dead_letter_id: str, actions: Actions) -> Accepted:
    """Runs the dead run's payload again as a new run; the dead one leaves the dead set."""
    run = await actions.requeue(dead_letter_id, API_CALLER)
    return Accepted(run_id=run.id)
