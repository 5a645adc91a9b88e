"""Cron bindings and Jobs API schedules in one list: next and last fire, create, delete,
trigger now, pause and resume."""

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from app.core.clock import utc_now
from app.dashboard.actions import Done, act
from app.dashboard.deps import ActingSession, CurrentSession
from app.dashboard.pages import back_to, client_of, render
from app.dispatch.errors import PayloadInvalid
from app.operations.schedule_request import ScheduleIn
from app.services import Actions, History, Pauses, Schedules, Workers

router = APIRouter()
BACK = "/dashboard/schedules"


@dataclass(frozen=True)
class ScheduleRow:
    source: str  # "binding" or "jobs-api"
    name: str
    job: str
    timing: str
    next_fire: datetime | None
    last_fire: datetime | None
    last_run_id: str | None
    last_status: str | None
    paused: bool
    skipped: int = 0


@router.get("/schedules")
async def list_schedules(
    *,
    request: Request,
    session: CurrentSession,
    pauses: Pauses,
    workers: Workers,
    history: History,
    schedules: Schedules,
) -> Response:
    """Every schedule, with its next and last fire."""
    now = utc_now()
    paused_jobs = await pauses.all()
    rows: list[ScheduleRow] = []
    for job in workers:
        if job.binding is None or job.schedule is None:
            continue
        last = await history.last_fired(job=job.name)
        paused = job.name in paused_jobs
        rows.append(
            ScheduleRow(
                source="binding",
                name=job.binding,
                job=job.name,
                timing=job.schedule.expression,
                next_fire=None if paused else job.schedule.next_after(now),
                last_fire=last.created_at if last else None,
                last_run_id=last.id if last else None,
                last_status=last.status.value if last else None,
                paused=paused,
                skipped=paused_jobs[job.name].skipped_firings if paused else 0,
            )
        )
    for schedule in await schedules.list():
        last = await history.last_fired(job=schedule.job, schedule=schedule.name)
        rows.append(
            ScheduleRow(
                source="jobs-api",
                name=schedule.name,
                job=schedule.job,
                timing=schedule.cron or f"once at {schedule.due_time:%Y-%m-%d %H:%M:%S}",
                next_fire=schedule.next_fire_after(now),
                last_fire=last.created_at if last else None,
                last_run_id=last.id if last else None,
                last_status=last.status.value if last else None,
                paused=schedule.paused,
            )
        )
    return render(
        request,
        "schedules.html",
        session,
        page="schedules",
        rows=rows,
        jobs=sorted(w.name for w in workers),
    )


@router.post("/schedules")
async def create_schedule(
    *,
    request: Request,
    session: ActingSession,
    actions: Actions,
    name: Annotated[str, Form(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")],
    job: Annotated[str, Form()],
    cron: Annotated[str, Form()] = "",
    due_time: Annotated[str, Form()] = "",
    payload: Annotated[str, Form()] = "",
) -> Response:
    """Creates (or replaces) a Jobs API schedule."""
    try:
        body = ScheduleIn.model_validate(
            {
                "job": job,
                "cron": cron.strip() or None,
                "due_time": _utc(due_time.strip()) if due_time.strip() else None,
                "payload": json.loads(payload) if payload.strip() else None,
            }
        )
    except (ValidationError, ValueError) as exc:
        return back_to(BACK, problem=f"schedule not created: {_reason(exc)}")

    async def create() -> Done:
        await actions.put_schedule(name, body, session.actor(client_of(request)))
        return Done(f"schedule {name} created")

    return await act(request, create, back=BACK)


@router.post("/schedules/binding/{binding}/{action}")
async def act_on_binding(
    binding: str,
    action: str,
    *,
    request: Request,
    session: ActingSession,
    workers: Workers,
    actions: Actions,
) -> Response:
    """trigger, pause or resume the job of a cron binding."""
    actor = session.actor(client_of(request))
    bound = workers.by_binding(binding)
    if bound is None:
        return await act(request, _said(f"no binding named {binding}"), back=BACK)
    job = bound.name

    async def trigger() -> Done:
        run = await actions.trigger(job, None, actor)
        return Done(f"{job} triggered: run {run.id}")

    async def pause() -> Done:
        await actions.pause_job(job, actor)
        return Done(f"{job} paused: its ticks make no runs")

    async def resume() -> Done:
        await actions.resume_job(job, actor)
        return Done(f"{job} resumed")

    verbs = {"trigger": trigger, "pause": pause, "resume": resume}
    return await act(request, verbs.get(action, _unknown(action)), back=BACK)


@router.post("/schedules/jobs-api/{name}/{action}")
async def act_on_schedule(
    name: str,
    action: str,
    *,
    request: Request,
    session: ActingSession,
    actions: Actions,
    schedules: Schedules,
) -> Response:
    """trigger, pause, resume or delete a Jobs API schedule."""
    actor = session.actor(client_of(request))
    changes = {
        "pause": actions.pause_schedule,
        "resume": actions.resume_schedule,
        "delete": actions.delete_schedule,
    }

    async def trigger() -> Done:
        schedule = await schedules.get(name)
        if schedule is None:
            return Done(f"no schedule named {name}")
        run = await actions.trigger(schedule.job, schedule.payload, actor)
        return Done(f"{schedule.job} triggered: run {run.id}")

    async def change() -> Done:
        await changes[action](name, actor)
        return Done(f"schedule {name}: {action} done")

    chosen = trigger if action == "trigger" else change if action in changes else None
    return await act(request, chosen or _unknown(action), back=BACK)


def _said(notice: str) -> Callable[[], Awaitable[Done]]:
    async def say() -> Done:
        return Done(notice)

    return say


def _unknown(action: str) -> Callable[[], Awaitable[Done]]:
    return _said(f"unknown action {action!r}")


def _utc(value: str) -> str:
    return value + ":00+00:00" if len(value) <= 16 else value


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(str(error["msg"]) for error in exc.errors())
    if isinstance(exc, PayloadInvalid):
        return str(exc)
    return f"the payload is not JSON ({exc})"
