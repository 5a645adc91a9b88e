"""The run history: a filtered list (bookmarkable GET parameters), CSV export, run detail with
its live progress, and the run actions."""

import asyncio
import contextlib
import csv
import io
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, get_args

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.responses import Response

from app.core.errors import Refused
from app.dashboard.actions import Done, act
from app.dashboard.deps import ActingSession, CurrentSession
from app.dashboard.pages import client_of, render
from app.dashboard.timeline import timeline_of
from app.dashboard.workflow_steps import step_bars
from app.models.run_query import RunQuery
from app.models.runs import JobKind, JobRun, RunStatus, TriggerType
from app.operations.actions import EVENT_NAME_PATTERN
from app.repositories.run_history import RunHistory, RunPage
from app.repositories.runs import UnknownRun
from app.services import Actions, Engine, History, Runs, Workers
from app.workers.registry import Registry

router = APIRouter()
CSV_MAX_ROWS = 10_000
LIVE_INTERVAL_SECONDS = 1.0
CSV_COLUMNS = [
    "id", "job", "kind", "status", "trigger", "attempt", "created_at", "started_at",
    "finished_at", "duration_ms", "instance", "error_type", "error_message",
]  # fmt: skip
FILTER_FIELDS = ("job", "kind", "status", "trigger", "since", "until", "text")
EVENT_NAME = re.compile(EVENT_NAME_PATTERN)
RUN_VERBS = {  # the operator verb of that name, and what it says it did ({new}: the run made)
    "cancel": "cancel of run {run} asked",
    "retry": "retried as run {new}",
    "requeue": "requeued as run {new}",
    "suspend": "workflow run {run} suspended",
    "resume": "workflow run {run} resumed",
    "purge": "workflow instance of run {run} purged",
    "rerun_from_failed_step": "re-run from its failed step as run {new}",
}


class FormRefused(Refused):
    status_code = 422


def parse_query(request: Request) -> tuple[RunQuery, str | None]:
    """The filters of the URL; an invalid one is dropped and named in the problem."""
    raw = {
        k: v for k, v in request.query_params.items() if v.strip() and k in RunQuery.model_fields
    }
    for key in ("since", "until"):
        if key in raw and len(raw[key]) <= 16:  # a browser's datetime-local: no zone, UTC meant
            raw[key] += ":00+00:00"
    try:
        return RunQuery.model_validate(raw), None
    except ValidationError as exc:
        bad = sorted({str(error["loc"][0]) for error in exc.errors()})
        kept = {k: v for k, v in raw.items() if k not in bad}
        return RunQuery.model_validate(kept), f"ignored invalid filter: {', '.join(bad)}"


async def search(history: RunHistory, workers: Registry, query: RunQuery) -> RunPage:
    kind_jobs = [w.name for w in workers if w.kind == query.kind] if query.kind else None
    return await history.search(query, kind_jobs=kind_jobs)


@router.get("/runs")
async def list_runs(
    request: Request, session: CurrentSession, history: History, workers: Workers
) -> Response:
    """Runs, newest first, filtered by job, kind, status, trigger, time range and free text."""
    query, problem = parse_query(request)
    page = await search(history, workers, query)
    filters = {k: request.query_params.get(k, "") for k in FILTER_FIELDS}
    kept = {k: v for k, v in filters.items() if v}
    return render(
        request,
        "runs.html",
        session,
        page="runs",
        runs=page,
        query=query,
        filters=filters,
        filter_query=kept,
        jobs=sorted(w.name for w in workers),
        kinds=get_args(JobKind),
        statuses=[s.value for s in RunStatus],
        triggers=get_args(TriggerType),
        filter_problem=problem,
    )


@router.get("/runs.csv")
async def export_runs(
    request: Request, session: CurrentSession, history: History, workers: Workers
) -> Response:
    """The filtered view as CSV (at most 10,000 runs, newest first)."""
    query, _ = parse_query(request)

    async def rows() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        written = 0
        current = query.model_copy(update={"limit": 500})
        while written < CSV_MAX_ROWS:
            page = await search(history, workers, current)
            for run in page.runs[: CSV_MAX_ROWS - written]:
                writer.writerow(_csv_row(run))
                written += 1
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if page.next is None:
                break
            current = current.model_copy(update={"before": page.next})

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="runs-{stamp}.csv"'},
    )


@router.get("/runs/{run_id}")
async def show_run(
    run_id: str,
    *,
    request: Request,
    session: CurrentSession,
    runs: Runs,
    history: History,
    engine: Engine,
) -> Response:
    """One run: payload, result, attempts, timeline, trigger, trace, progress and actions; a
    workflow's run, its steps as a chart."""
    run = await runs.get(run_id)
    if run is None:
        return render(
            request, "missing.html", session, page="runs", what=f"run {run_id}", status_code=404
        )
    steps = step_bars(run, await history.steps_of(run.id)) if run.kind == "workflow" else []
    instance = None
    if run.kind == "workflow" and not run.status.finished:
        with contextlib.suppress(Refused):  # the sidecar away: the page without it
            instance = await engine.workflow_instance(run)
    return render(
        request,
        "run.html",
        session,
        page="runs",
        run=run,
        timeline=timeline_of(run),
        steps=steps,
        instance=instance,
    )


@router.get("/runs/{run_id}/live")
async def stream_run(
    run_id: str, request: Request, session: CurrentSession, runs: Runs
) -> Response:
    """Server-sent events: the run's status and progress each second, until it finishes."""

    async def events() -> AsyncIterator[str]:
        while not await request.is_disconnected():
            run = await runs.get(run_id)
            if run is None:
                return
            yield f"data: {json.dumps(live_view(run))}\n\n"
            if run.status.finished:
                return
            await asyncio.sleep(LIVE_INTERVAL_SECONDS)

    return StreamingResponse(events(), media_type="text/event-stream")


@router.get("/runs/{run_id}/live.json")
async def get_run_live(run_id: str, session: CurrentSession, runs: Runs) -> dict[str, Any]:
    """The run's status and progress once: the polling fallback."""
    run = await runs.get(run_id)
    if run is None:
        raise UnknownRun(run_id)
    return live_view(run)


def live_view(run: JobRun) -> dict[str, Any]:
    progress = run.progress
    percent = None
    if progress is not None and progress.total:
        percent = round(100 * progress.done / progress.total, 1)
    return {
        "status": run.status.value,
        "attempt": run.attempt,
        "done": progress.done if progress else None,
        "total": progress.total if progress else None,
        "percent": percent,
        "finished": run.status.finished,
    }


@router.post("/runs/{run_id}/events")
async def raise_workflow_event(
    run_id: str, *, request: Request, session: ActingSession, actions: Actions
) -> Response:
    """Raises an external event on a workflow run's instance: the form's `name`, and its
    `data` as JSON (empty: none)."""
    actor = session.actor(client_of(request))
    form = await request.form()
    name, text = str(form.get("name") or "").strip(), str(form.get("data") or "").strip()

    async def raise_it() -> Done:
        if not EVENT_NAME.match(name):
            raise FormRefused("an event name is letters, digits and _ . : - (at most 100)")
        try:
            data = json.loads(text) if text else None
        except ValueError as exc:
            raise FormRefused(f"the event's data is not JSON: {exc}") from exc
        await actions.raise_event(run_id, name, data, actor)
        return Done(f"event {name!r} raised on run {run_id}")

    return await act(request, raise_it, back=f"/dashboard/runs/{run_id}")


@router.post("/runs/{run_id}/{action}")
async def act_on_run(
    run_id: str, action: str, *, request: Request, session: ActingSession, actions: Actions
) -> Response:
    """cancel (a running run at its next chunk boundary; a workflow's instance is terminated),
    retry (a failed run's next attempt now; a finished run's payload as a new run: a workflow
    from its start), requeue (a dead run's payload as a new run; the dead one leaves the dead
    set), and for a workflow run suspend, resume, purge (its instance's state) and, for a failed
    one, rerun_from_failed_step."""
    actor = session.actor(client_of(request))

    async def run_action() -> Done:
        notice = RUN_VERBS.get(action)
        if notice is None:
            return Done(f"unknown action {action!r}")
        run = await getattr(actions, action)(run_id, actor)
        makes_a_run = action in ("retry", "rerun_from_failed_step")
        go_to = f"/dashboard/runs/{run.id}" if makes_a_run else None
        return Done(notice.format(run=run_id, new=run.id), go_to=go_to)

    # A requeue goes back to where it was asked (the run, or the Failures page).
    return await act(
        request, run_action, back=None if action == "requeue" else f"/dashboard/runs/{run_id}"
    )


def _csv_row(run: JobRun) -> list[Any]:
    trigger = run.trigger.type
    detail = run.trigger.event_id or run.trigger.schedule or run.trigger.tick
    return [
        run.id, run.job, run.kind, run.status.value, f"{trigger}:{detail}" if detail else trigger,
        run.attempt, _iso(run.created_at), _iso(run.started_at), _iso(run.finished_at),
        run.duration_ms, run.instance, run.error.type if run.error else "",
        run.error.message if run.error else "",
    ]  # fmt: skip


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""
