from typing import Any

from app.workers.builtin.scheduled_report import build_report, percentile


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]

    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile([4.0], 0.95) == 4.0
    assert percentile([], 0.5) is None


def test_report_groups_by_job_and_status_and_ranks_errors() -> None:
    runs: list[dict[str, Any]] = [
        {"job": "a", "status": "succeeded", "duration_ms": 10.0},
        {"job": "a", "status": "dead", "duration_ms": 30.0, "error": {"type": "E", "message": "x"}},
        {"job": "b", "status": "dead", "duration_ms": None, "error": {"type": "E", "message": "y"}},
        {"job": "b", "status": "dead", "error": {"type": "E", "message": "y"}},
    ]

    report = build_report(runs)

    assert report["total_runs"] == 4
    assert report["by_job"]["a"] == {
        "runs": 2,
        "by_status": {"dead": 1, "succeeded": 1},
        "p50_ms": 10.0,
        "p95_ms": 30.0,
    }
    assert report["by_job"]["b"]["p50_ms"] is None
    assert [e["count"] for e in report["top_errors"]] == [2, 1]
