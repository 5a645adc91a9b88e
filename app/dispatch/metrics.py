"""The run metrics, three ways: OpenTelemetry instruments (exported over OTLP when configured),
Prometheus instruments (`GET /metrics`), and the dashboard's statistics (`RunStats`)."""

from functools import partial

from opentelemetry import metrics
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from app.dispatch.stats import BUCKETS_MS, FinishedAttempt, RunStats

_SECONDS_BUCKETS = [ms / 1000 for ms in BUCKETS_MS]


class RunMetrics:
    def __init__(self, meter: metrics.Meter, *, registry: CollectorRegistry, stats: RunStats):
        self.stats = stats
        self.registry = registry
        self._finished = meter.create_counter(
            "worker.run.attempts", unit="{attempt}", description="attempts finished, by outcome"
        )
        self._duration = meter.create_histogram(
            "worker.run.duration", unit="ms", description="duration of each attempt"
        )
        self._runs = Counter(
            "worker_run_attempts",
            "Attempts finished, by job, kind and outcome (succeeded, failed, dead, cancelled).",
            ["job", "kind", "status"],
            registry=registry,
        )
        seconds = partial(Histogram, buckets=_SECONDS_BUCKETS, registry=registry)
        self._attempt_seconds = seconds(
            "worker_attempt_duration_seconds", "How long each attempt ran.", ["job", "kind"]
        )
        self._wait_seconds = seconds(
            "worker_queue_wait_seconds",
            "From a run's creation to the start of its first attempt.",
            ["job", "kind"],
        )
        self._lag_seconds = seconds(
            "worker_event_lag_seconds",
            "From a CloudEvent's `time` to its run being stored.",
            ["topic"],
        )
        self.in_flight = Gauge(
            "worker_runs_in_flight", "Runs this instance executes now.", registry=registry
        )
        self.dead_set = Gauge(
            "worker_dead_set_size",
            "Dead runs not requeued (counted at most every 10 s per instance).",
            registry=registry,
        )

    def attempt_finished(self, attempt: FinishedAttempt) -> None:
        job, kind, status = attempt.job, attempt.kind, attempt.status.value
        attributes = {"job": job, "kind": kind, "status": status}
        self._finished.add(1, attributes)
        self._duration.record(attempt.duration_ms, attributes)
        self._runs.labels(job, kind, status).inc()
        self._attempt_seconds.labels(job, kind).observe(attempt.duration_ms / 1000)
        if attempt.wait_ms is not None:
            self._wait_seconds.labels(job, kind).observe(max(attempt.wait_ms, 0.0) / 1000)
        self.stats.attempt_finished(attempt)

    def event_lag(self, *, topic: str, seconds: float) -> None:
        self._lag_seconds.labels(topic).observe(max(seconds, 0.0))
