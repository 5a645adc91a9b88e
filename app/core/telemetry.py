"""OpenTelemetry: traces (FastAPI's server spans, joined to the `traceparent` daprd sends, and a
span per run attempt) and metrics (runs finished, their durations).

Exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the standard OpenTelemetry
variables configure the exporters); otherwise they are made and kept in the process only.
"""

import os
from dataclasses import dataclass

from fastapi import FastAPI
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from app.core.config import Settings


@dataclass(frozen=True)
class Telemetry:
    tracer_provider: trace.TracerProvider
    meter_provider: metrics.MeterProvider

    @property
    def tracer(self) -> trace.Tracer:
        return self.tracer_provider.get_tracer("aevatar-worker")

    @property
    def meter(self) -> metrics.Meter:
        return self.meter_provider.get_meter("aevatar-worker")

    def shutdown(self) -> None:
        if isinstance(self.tracer_provider, TracerProvider):
            self.tracer_provider.shutdown()
        if isinstance(self.meter_provider, MeterProvider):
            self.meter_provider.shutdown()


def create_telemetry(
    settings: Settings,
    instance: str,
    *,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
) -> Telemetry:
    """`span_exporter` and `metric_reader` replace the OTLP ones (tests pass in-memory ones).
    With neither, and no OTLP endpoint, the API's no-op providers: a span and two measurements
    per run that nothing would export are not made (the no-op tracer still hands the parent's
    context on, so a run's record keeps the trace id daprd sent)."""
    otlp = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    if span_exporter is None and metric_reader is None and not otlp:
        return Telemetry(trace.NoOpTracerProvider(), metrics.NoOpMeterProvider())
    resource = Resource.create({"service.name": settings.app.name, "service.instance.id": instance})
    tracer_provider = TracerProvider(resource=resource)
    readers: list[MetricReader] = []
    if span_exporter is not None:
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    if metric_reader is not None:
        readers.append(metric_reader)
    if otlp:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
            OTLPMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    return Telemetry(tracer_provider, MeterProvider(resource=resource, metric_readers=readers))


def instrument(app: FastAPI, telemetry: Telemetry) -> None:
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        # Deliveries are served by app.api.delivery.DeliveryLane, which joins daprd's trace
        # itself: a server span per event would cost more than the event's own bookkeeping.
        excluded_urls="healthz,readyz,/events/",
        # A span per ASGI receive and send of every delivery costs more than the delivery's
        # own work; the server span and the run's CONSUMER span tell the story.
        exclude_spans=["receive", "send"],
    )
