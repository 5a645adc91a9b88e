"""The run statistics gathered in memory: buckets, percentiles, and what a failed write keeps."""

from datetime import UTC, datetime

from app.models.runs import RunStatus
from app.observability.run_stats import RunStats
from app.observability.tally import BUCKETS_MS, FinishedAttempt, bucket_of, percentile_ms

AT = datetime(2026, 12, 1, 10, 30, 15, tzinfo=UTC)


def test_a_latency_falls_in_the_first_bucket_that_holds_it() -> None:
    assert bucket_of(0.3) == 0
    assert bucket_of(1) == 0
    assert bucket_of(1.5) == 1
    assert bucket_of(250) == BUCKETS_MS.index(500)
    assert bucket_of(10**7) == len(BUCKETS_MS)


def test_percentiles_are_bucket_upper_bounds() -> None:
    histogram = {bucket_of(3): 90, bucket_of(150): 9, bucket_of(10**7): 1}
    assert percentile_ms(histogram, 0.5) == 5.0
    assert percentile_ms(histogram, 0.95) == 200.0
    assert percentile_ms(histogram, 1.0) == float("inf")
    assert percentile_ms({}, 0.5) is None


def test_tallies_are_kept_per_job_and_minute_and_given_back_after_a_failed_write() -> None:
    stats = RunStats()
    for status in (RunStatus.SUCCEEDED, RunStatus.SUCCEEDED, RunStatus.DEAD):
        stats.attempt_finished(FinishedAttempt("a", "event", status, 4, None, AT))
    stats.attempt_finished(
        FinishedAttempt("a", "event", RunStatus.SUCCEEDED, 4, 30, AT.replace(minute=31)),
    )
    taken = stats.take()
    assert [(t.start.minute, dict(t.statuses)) for t in taken] == [
        (30, {"succeeded": 2, "dead": 1}),
        (31, {"succeeded": 1}),
    ]
    assert stats.take() == []
    stats.give_back(taken)
    stats.attempt_finished(FinishedAttempt("a", "event", RunStatus.FAILED, 9, None, AT))
    again = {t.start.minute: t for t in stats.take()}
    assert dict(again[30].statuses) == {"succeeded": 2, "dead": 1, "failed": 1}
    assert sum(again[30].duration.values()) == 4
    assert sum(again[31].wait.values()) == 1
