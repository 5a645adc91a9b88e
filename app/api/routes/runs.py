"""The run history, and what an operator can do to a run."""

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import Body, Path, Query, status

from app.api.deps import operator_router
from app.api.schemas import Accepted, InstanceOut, Page, RunOut, problems
from app.core.errors import Refused
from app.models.runs import RunStatus
from app.operations.actions import EVENT_NAME_PATTERN
from app.operations.actor import API_CALLER
from app.repositories.runs import UnknownRun
from app.services import Actions, Engine, History, Runs

router = operator_router("/api/runs", "runs")


class NoInstance(Refused, LookupError):
    status_code = 404

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} has no workflow instance the sidecar knows")


EventName = Annotated[str, Path(pattern=EVENT_NAME_PATTERN)]


@router.get("", responses=problems(404))
async def list_runs(
    history: History,
    *,
    job: str | None = None,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[str | None, Query(description="the `next` of the previous page")] = None,
    parent: Annotated[
        str | None, Query(description="a workflow's run id: its steps, in the order made")
    ] = None,
) -> Page[RunOut]:
    """Runs, newest first, filtered by job and status; or a workflow run's steps."""
    if parent is not None:
        steps = await history.steps_of(parent, limit=limit)
        kept = [s for s in steps if (job is None or s.job == job) and status in (None, s.status)]
        return Page(items=[RunOut.of(s) for s in kept], next=None)
    runs = await history.list_runs(job=job, status=status, limit=limit, before=before)
    return Page(
        items=[RunOut.of(r) for r in runs], next=runs[-1].id if len(runs) == limit else None
    )


@router.get("/{run_id}", responses=problems(404))
async def get_run(run_id: str, runs: Runs) -> RunOut:
    """One run, with every attempt, its progress, result or error."""
    run = await runs.get(run_id)
    if run is None:
        raise UnknownRun(run_id)
    return RunOut.of(run)


@router.get("/{run_id}/instance", responses=problems(404))
async def get_workflow_instance(run_id: str, runs: Runs, engine: Engine) -> InstanceOut:
    """A workflow run's instance as the sidecar tells it: Dapr's status, what the workflow
    waits for (a timer, an event) if it said so, and when it last moved. 404 for a run of
    another kind or an instance the sidecar does not know (purged, not started yet)."""
    run = await runs.get(run_id)
    if run is None:
        raise UnknownRun(run_id)
    instance = await engine.workflow_instance(run)
    if instance is None:
        raise NoInstance(run_id)
    return InstanceOut(**asdict(instance))


@router.post("/{run_id}/cancel", status_code=status.HTTP_202_ACCEPTED, responses=problems(404, 409))
async def cancel_run(run_id: str, actions: Actions) -> Accepted:
    """Cancels a waiting run at once, a running one at its next chunk boundary."""
    run = await actions.cancel(run_id, API_CALLER)
    return Accepted(run_id=run.id)


@router.post("/{run_id}/retry", status_code=status.HTTP_202_ACCEPTED, responses=problems(404, 409))
async def retry_run(run_id: str, actions: Actions) -> Accepted:
    """A failed run's next attempt now; for a finished run, a new run with the same payload."""
    run = await actions.retry(run_id, API_CALLER)
    return Accepted(run_id=run.id)


@router.post(
    "/{run_id}/suspend", status_code=status.HTTP_202_ACCEPTED, responses=problems(404, 409)
)
async def suspend_workflow_run(run_id: str, actions: Actions) -> Accepted:
    """Suspends a workflow run's instance: no further step starts until it is resumed (events
    raised meanwhile wait for it). The run stays running, with `suspended_at` set."""
    run = await actions.suspend(run_id, API_CALLER)
    return Accepted(run_id=run.id)


@router.post("/{run_id}/resume", status_code=status.HTTP_202_ACCEPTED, responses=problems(404, 409))
async def resume_workflow_run(run_id: str, actions: Actions) -> Accepted:
    """Resumes a suspended workflow run's instance where it stopped."""
    run = await actions.resume(run_id, API_CALLER)
    return Accepted(run_id=run.id)


@router.post("/{run_id}/purge", status_code=status.HTTP_202_ACCEPTED, responses=problems(404, 409))
async def purge_workflow_run(run_id: str, actions: Actions) -> Accepted:
    """Deletes a finished workflow run's instance state from the sidecar's state store; the
    run and its steps stay in the history (`purged_at` set). To re-run a failed workflow from
    the start with its input, retry it: a new run, a new instance."""
    run = await actions.purge(run_id, API_CALLER)
    return Accepted(run_id=run.id)


@router.post(
    "/{run_id}/rerun-from-failed-step",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(404, 409),
)
async def rerun_workflow_from_failed_step(run_id: str, actions: Actions) -> Accepted:
    """A failed workflow run again from the step that failed: a new run (`trigger.retry_of`,
    `trigger.from_step`) whose instance replays the failed one's history up to that step, then
    runs it and the rest; the steps before it are not run again. 409 for a run that did not
    fail, or whose instance has no failed step (re-run it from the start: retry)."""
    run = await actions.rerun_from_failed_step(run_id, API_CALLER)
    return Accepted(run_id=run.id)


@router.post(
    "/{run_id}/events/{name}", status_code=status.HTTP_202_ACCEPTED, responses=problems(404, 409)
)
async def raise_workflow_event(
    run_id: str, name: EventName, actions: Actions, data: Annotated[Any, Body()] = None
) -> Accepted:
    """Raises an external event on a workflow run's instance (an approval, with its data as
    the body): a `flow.wait_for_event(name)` in the workflow receives it."""
    run = await actions.raise_event(run_id, name, data, API_CALLER)
    return Accepted(run_id=run.id)
