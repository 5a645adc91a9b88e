"""The run metrics: how many runs end in each status, and how long their attempts take."""

from opentelemetry import metrics

from app.models.runs import RunStatus, WorkerKind


class RunMetrics:
    def __init__(self, meter: metrics.Meter) -> None:
        self._finished = meter.create_counter(
            "worker.run.attempts", unit="{attempt}", description="attempts finished, by outcome"
        )
        self._duration = meter.create_histogram(
            "worker.run.duration", unit="ms", description="duration of each attempt"
        )

    def attempt_finished(
        self, *, job: str, kind: WorkerKind, status: RunStatus, duration_ms: float
    ) -> None:
        attributes = {"job": job, "kind": kind, "status": status.value}
        self._finished.add(1, attributes)
        self._duration.record(duration_ms, attributes)
