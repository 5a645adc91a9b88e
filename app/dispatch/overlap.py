"""A cron job's overlap policy (`overlap=`, app/workers/flow_control.py) at a tick: whether the
tick makes its run, or is recorded as skipped because the previous run still runs. That two
runs never run at once is its flow gate's part (`max_running=1`)."""

from app.models.runs import JobRun, RunStatus
from app.workers.registry import Job


def overlap_skip_reason(job: Job, unfinished: list[JobRun]) -> str | None:
    """Why this tick makes no run (None: it does), given the job's unfinished runs."""
    if job.overlap == "allow" or not unfinished:
        return None
    running = [run for run in unfinished if run.status is RunStatus.RUNNING]
    waiting = [run for run in unfinished if run.status is not RunStatus.RUNNING]
    if job.overlap == "skip":
        previous = (running or waiting)[0]
        return f"run {previous.id} of this job was still {previous.status.value} (overlap='skip')"
    if waiting:
        return (
            f"run {waiting[0].id} of this job was already waiting for run "
            f"{running[0].id if running else 'before it'} to end (overlap='buffer_one')"
        )
    return None
