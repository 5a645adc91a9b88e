"""A cron job's overlap policy (`overlap=`, app/workers/flow_control.py) at a tick: whether the
tick makes its run, or is recorded as skipped because the previous run still runs. That two
runs never run at once is its flow gate's part (`max_running=1`)."""

from dataclasses import dataclass

from app.models.runs import JobRun, RunStatus
from app.workers.registry import Job


@dataclass(frozen=True)
class TickPlan:
    skip_reason: str | None = None
    """Why the tick makes no run (None: it makes one)."""
    behind: str | None = None
    """With `buffer_one`, the running run the tick's run waits behind. One run at most waits
    behind each: of two ticks that read the job's runs at once, the run index's uniqueness
    keeps the first one stored (`RunRepository.insert`), and the other tick is skipped."""


def plan_tick(job: Job, unfinished: list[JobRun]) -> TickPlan:
    """What this tick does, given the job's unfinished runs."""
    if job.overlap == "allow" or not unfinished:
        return TickPlan()
    running = [run for run in unfinished if run.status is RunStatus.RUNNING]
    waiting = [run for run in unfinished if run.status is not RunStatus.RUNNING]
    if job.overlap == "skip":
        previous = (running or waiting)[0]
        return TickPlan(
            f"run {previous.id} of this job was still {previous.status.value} (overlap='skip')"
        )
    if waiting:
        return TickPlan(
            f"run {waiting[0].id} of this job was already waiting for run "
            f"{running[0].id if running else 'before it'} to end (overlap='buffer_one')"
        )
    return TickPlan(behind=running[0].id)


def already_waiting_behind(run_id: str) -> str:
    """The skip reason of a tick whose run lost the place behind `run_id` to another tick's."""
    return f"another tick's run was already waiting for run {run_id} to end (overlap='buffer_one')"
