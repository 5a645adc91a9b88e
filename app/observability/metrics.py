"""The run metrics, each declared once and recorded once, to two exporters: an OpenTelemetry
instrument (OTLP, when configured) and a Prometheus one (`GET /metrics`), named alike
(`worker.attempt.duration` in seconds is `worker_attempt_duration_seconds`). The dashboard's
statistics (`RunStats`) are fed by the same call."""

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from app.observability.run_stats import RunStats
from app.observability.tally import BUCKETS_MS, FinishedAttempt

_SECONDS_BUCKETS = [ms / 1000 for ms in BUCKETS_MS]


class _CountedTwice:
    """A counter: `worker.run.attempts` and `worker_run_attempts_total`."""

    def __init__(
        self, meter: metrics.Meter, registry: CollectorRegistry, name: str, *,
        description: str, unit: str, labels: Sequence[str],
    ) -> None:  # fmt: skip
        self._labels = labels
        self._otel = meter.create_counter(name, unit=unit, description=description)
        self._prometheus = Counter(name.replace(".", "_"), description, labels, registry=registry)
        self._series: dict[tuple[str, ...], tuple[dict[str, str], Any]] = {}

    def add(self, *values: str) -> None:
        attributes, prometheus = _series_of(self._series, self._labels, self._prometheus, values)
        self._otel.add(1, attributes)
        prometheus.inc()


class _TimedTwice:
    """A histogram of seconds: `worker.x.y` (unit s) and `worker_x_y_seconds`."""

    def __init__(
        self, meter: metrics.Meter, registry: CollectorRegistry, name: str, *,
        description: str, labels: Sequence[str],
    ) -> None:  # fmt: skip
        self._labels = labels
        self._otel = meter.create_histogram(name, unit="s", description=description)
        self._prometheus = Histogram(
            name.replace(".", "_") + "_seconds",
            description,
            labels,
            buckets=_SECONDS_BUCKETS,
            registry=registry,
        )
        self._series: dict[tuple[str, ...], tuple[dict[str, str], Any]] = {}

    def record(self, seconds: float, *values: str) -> None:
        attributes, prometheus = _series_of(self._series, self._labels, self._prometheus, values)
        seconds = max(seconds, 0.0)
        self._otel.record(seconds, attributes)
        prometheus.observe(seconds)


def _series_of(
    known: dict[tuple[str, ...], tuple[dict[str, str], Any]],
    labels: Sequence[str],
    prometheus: Counter | Histogram,
    values: tuple[str, ...],
) -> tuple[dict[str, str], Any]:
    """One time series' OpenTelemetry attributes and Prometheus child, made once: a run records
    four values per event, and `labels()` takes a lock and builds its key each time."""
    series = known.get(values)
    if series is None:
        series = known[values] = (
            dict(zip(labels, values, strict=True)),
            prometheus.labels(*values),
        )
    return series


class _GaugedTwice:
    """A gauge read when exported: `worker.x.y` and `worker_x_y`."""

    def __init__(
        self, meter: metrics.Meter, registry: CollectorRegistry, name: str, *, description: str
    ) -> None:
        self._read: Callable[[], float] = lambda: 0.0
        meter.create_observable_gauge(name, callbacks=[self._observe], description=description)
        self._prometheus = Gauge(name.replace(".", "_"), description, registry=registry)
        self._prometheus.set_function(self._value)

    def read_with(self, read: Callable[[], float]) -> None:
        self._read = read

    def set(self, value: float) -> None:
        self._read = lambda: value

    def _value(self) -> float:
        return self._read()

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self._value())]


class RunMetrics:
    def __init__(self, meter: metrics.Meter, *, registry: CollectorRegistry, stats: RunStats):
        self.stats = stats
        self.registry = registry
        self._attempts = _CountedTwice(
            meter, registry, "worker.run.attempts", unit="{attempt}",
            description="Attempts finished, by job, kind and outcome (succeeded, failed, dead, "
            "cancelled).",
            labels=("job", "kind", "status"),
        )  # fmt: skip
        self._attempt_duration = _TimedTwice(
            meter, registry, "worker.attempt.duration",
            description="How long each attempt ran.", labels=("job", "kind"),
        )  # fmt: skip
        self._queue_wait = _TimedTwice(
            meter, registry, "worker.queue.wait",
            description="From a run's creation to the start of its first attempt.",
            labels=("job", "kind"),
        )  # fmt: skip
        self._event_lag = _TimedTwice(
            meter, registry, "worker.event.lag",
            description="From a CloudEvent's `time` to its run being stored.", labels=("topic",),
        )  # fmt: skip
        self.in_flight = _GaugedTwice(
            meter, registry, "worker.runs.in_flight", description="Runs this instance executes now."
        )
        self.dead_set = _GaugedTwice(
            meter, registry, "worker.dead_set.size",
            description="Dead runs not requeued (counted at most every 10 s per instance).",
        )  # fmt: skip

    def attempt_finished(self, attempt: FinishedAttempt) -> None:
        job, kind = attempt.job, attempt.kind
        self._attempts.add(job, kind, attempt.status.value)
        self._attempt_duration.record(attempt.duration_ms / 1000, job, kind)
        if attempt.wait_ms is not None:
            self._queue_wait.record(attempt.wait_ms / 1000, job, kind)
        self.stats.attempt_finished(attempt)

    def event_lag(self, *, topic: str, seconds: float) -> None:
        self._event_lag.record(seconds, topic)
