"""A run's states in order, with the wait between each and the one before it."""

from dataclasses import dataclass
from datetime import datetime

from app.models.runs import JobRun


@dataclass(frozen=True)
class Step:
    at: datetime
    label: str
    instance: str | None = None
    since_previous_ms: float | None = None


def timeline_of(run: JobRun) -> list[Step]:
    moments: list[tuple[datetime, str, str | None]] = [(run.created_at, "created", None)]
    for attempt in run.attempts:
        moments.append((attempt.started_at, f"attempt {attempt.attempt} started", attempt.instance))
        if attempt.finished_at is not None:
            moments.append(
                (
                    attempt.finished_at,
                    f"attempt {attempt.attempt} {attempt.status.value}",
                    attempt.instance,
                )
            )
    if run.status.value == "running" and run.started_at is not None:
        latest = max((m[0] for m in moments), default=run.created_at)
        if run.started_at >= latest and len(run.attempts) < run.attempt:
            moments.append((run.started_at, f"attempt {run.attempt} running", run.instance))
    if run.finished_at is not None and (
        not run.attempts or run.status.value in ("cancelled", "dead")
    ):
        moments.append((run.finished_at, run.status.value, run.instance))
    moments.sort(key=lambda m: m[0])
    steps: list[Step] = []
    previous: datetime | None = None
    for at, label, instance in moments:
        wait = (at - previous).total_seconds() * 1000 if previous else None
        steps.append(Step(at=at, label=label, instance=instance, since_previous_ms=wait))
        previous = at
    return steps
