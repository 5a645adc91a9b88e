"""Nothing is made per run for telemetry that nothing exports."""

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.core.config import Settings
from app.core.telemetry import create_telemetry


def test_without_an_exporter_the_providers_are_no_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    telemetry = create_telemetry(Settings(), "i-1")

    assert isinstance(telemetry.tracer_provider, trace.NoOpTracerProvider)
    assert isinstance(telemetry.meter_provider, metrics.NoOpMeterProvider)
    telemetry.shutdown()


def test_a_parent_trace_still_reaches_the_code_under_a_no_op_span(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    tracer = create_telemetry(Settings(), "i-1").tracer
    parent = trace.SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=trace.TraceFlags(1),
    )
    context = trace.set_span_in_context(trace.NonRecordingSpan(parent))

    with tracer.start_as_current_span("run job", context=context):
        seen = trace.get_current_span().get_span_context()

    assert seen.trace_id == parent.trace_id


def test_with_an_exporter_the_sdk_records() -> None:
    telemetry = create_telemetry(
        Settings(),
        "i-1",
        span_exporter=InMemorySpanExporter(),
        metric_reader=InMemoryMetricReader(),
    )

    assert isinstance(telemetry.tracer_provider, TracerProvider)
    assert isinstance(telemetry.meter_provider, MeterProvider)
    telemetry.shutdown()
