"""A workflow run's steps as a chart: each step a bar from its start to its end, on the time
axis of the workflow's run, so that what ran in turn and what ran side by side shows."""

from dataclasses import dataclass
from datetime import datetime

from app.core.clock import utc_now
from app.models.runs import JobRun


@dataclass(frozen=True)
class StepBar:
    run: JobRun
    start_ms: float
    """From the workflow run's creation to the step's start (its creation while it waits)."""
    end_ms: float
    """To the step's end (now, while it runs or waits)."""
    left_pct: float
    width_pct: float


def step_bars(workflow: JobRun, steps: list[JobRun], now: datetime | None = None) -> list[StepBar]:
    origin = workflow.created_at
    now = now or utc_now()

    def offset(at: datetime) -> float:
        return max((at - origin).total_seconds() * 1000, 0.0)

    spans = [
        (step, offset(step.started_at or step.created_at), offset(step.finished_at or now))
        for step in steps
    ]
    total = max([end for _, _, end in spans] + [offset(workflow.finished_at or now), 1.0])
    return [
        StepBar(
            run=step,
            start_ms=start,
            end_ms=end,
            left_pct=100 * start / total,
            width_pct=max(100 * (end - start) / total, 0.5),
        )
        for step, start, end in spans
    ]
