"""Each run metric is declared once and reaches both exporters under one name: the
OpenTelemetry instrument `worker.a.b` and the Prometheus family `worker_a_b` (`_seconds` for a
histogram of seconds), recorded by the same call, which also feeds the dashboard's tallies."""

from datetime import UTC, datetime

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest

from app.models.runs import RunStatus
from app.observability.metrics import RunMetrics
from app.observability.run_stats import RunStats
from app.observability.tally import FinishedAttempt

AT = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)


def test_one_call_records_both_exporters_and_the_tallies() -> None:
    reader = InMemoryMetricReader()
    registry = CollectorRegistry()
    run_metrics = RunMetrics(
        MeterProvider(metric_readers=[reader]).get_meter("t"), registry=registry, stats=RunStats()
    )
    run_metrics.in_flight.read_with(lambda: 3)
    run_metrics.dead_set.set(7)
    run_metrics.attempt_finished(FinishedAttempt("a", "event", RunStatus.SUCCEEDED, 250, 40, AT))
    run_metrics.event_lag(topic="orders", seconds=0.2)

    data = reader.get_metrics_data()
    assert data is not None
    otel = {
        metric.name: metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert set(otel) == {
        "worker.run.attempts", "worker.attempt.duration", "worker.queue.wait",
        "worker.event.lag", "worker.runs.in_flight", "worker.dead_set.size",
    }  # fmt: skip
    (duration,) = otel["worker.attempt.duration"].data.data_points
    assert duration.sum == 0.25  # type: ignore[union-attr]
    assert otel["worker.attempt.duration"].unit == "s"

    text = generate_latest(registry).decode()
    assert 'worker_run_attempts_total{job="a",kind="event",status="succeeded"} 1.0' in text
    assert 'worker_attempt_duration_seconds_sum{job="a",kind="event"} 0.25' in text
    assert 'worker_queue_wait_seconds_count{job="a",kind="event"} 1.0' in text
    assert 'worker_event_lag_seconds_count{topic="orders"} 1.0' in text
    assert "worker_runs_in_flight 3.0" in text
    assert "worker_dead_set_size 7.0" in text
    for name in otel:
        family = name.replace(".", "_")
        assert f"# TYPE {family}" in text or f"# TYPE {family}_seconds" in text, name

    (tally,) = run_metrics.stats.take()
    assert dict(tally.statuses) == {"succeeded": 1}
    assert tally.run_ms(0.5) == 500.0
