"""A workflow's steps as bars on the workflow run's time axis."""

from datetime import UTC, datetime, timedelta

from app.dashboard.workflow_steps import step_bars
from app.models.runs import JobRun, RunStatus, RunTrigger

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def run(
    id: str, *, created: float, started: float | None, finished: float | None, **fields: object
) -> JobRun:
    def at(seconds: float | None) -> datetime | None:
        return None if seconds is None else T0 + timedelta(seconds=seconds)

    return JobRun(
        id=id,
        job="j",
        kind="manual",
        status=RunStatus.SUCCEEDED if finished is not None else RunStatus.RUNNING,
        trigger=RunTrigger(type="workflow"),
        created_at=at(created),
        started_at=at(started),
        finished_at=at(finished),
        **fields,
    )


def test_steps_in_turn_and_side_by_side_are_placed_on_the_workflows_axis() -> None:
    workflow = run("w", created=0, started=0, finished=10)
    steps = [
        run("a", created=0, started=0, finished=2, step="first"),
        run("b", created=2, started=2, finished=6, step="left"),
        run("c", created=2, started=3, finished=8, step="right"),
    ]
    bars = step_bars(workflow, steps)

    assert [(b.start_ms, b.end_ms) for b in bars] == [(0, 2000), (2000, 6000), (3000, 8000)]
    assert [round(b.left_pct) for b in bars] == [0, 20, 30]
    assert [round(b.width_pct) for b in bars] == [20, 40, 50]


def test_a_step_not_finished_runs_to_now_and_a_waiting_one_starts_at_its_creation() -> None:
    workflow = run("w", created=0, started=0, finished=None)
    waiting = run("d", created=4, started=None, finished=None, step="waits")
    (bar,) = step_bars(workflow, [waiting], now=T0 + timedelta(seconds=8))

    assert (bar.start_ms, bar.end_ms) == (4000, 8000)
    assert round(bar.left_pct) == 50
