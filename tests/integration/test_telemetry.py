"""Traces and metrics of runs, read back from in-memory exporters."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.core.config import Settings
from app.main import create_app
from tests.integration.test_events import cloud_event
from tests.support import eventually, run_reaching, trigger, until_started

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@dataclass
class Observed:
    client: httpx.AsyncClient
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader


@pytest.fixture
async def observed(settings: Settings) -> AsyncIterator[Observed]:
    spans, metrics = InMemorySpanExporter(), InMemoryMetricReader()
    app = create_app(settings, span_exporter=spans, metric_reader=metrics)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            await until_started(client)
            yield Observed(client, spans, metrics)


def _run_spans(observed: Observed, job: str) -> list[Any]:
    return [s for s in observed.spans.get_finished_spans() if s.name == f"run {job}"]


async def test_an_event_run_joins_the_trace_daprd_sent(observed: Observed) -> None:
    event = cloud_event({"orderId": "traced"})

    response = await observed.client.post(
        "/events/pubsub/domain-events", json=event, headers={"traceparent": TRACEPARENT}
    )

    assert response.json() == {"status": "SUCCESS"}
    (span,) = _run_spans(observed, "record_domain_event")
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.attributes["job"] == "record_domain_event"
    runs = (await observed.client.get("/api/runs", params={"job": "record_domain_event"})).json()
    assert runs["items"][0]["trace_id"] == TRACE_ID


async def test_every_attempt_of_a_run_is_in_one_trace_and_counted(observed: Observed) -> None:
    run_id = await trigger(observed.client, "flaky_job", {"key": "telemetry", "fail_times": 1})
    run = await run_reaching(observed.client, run_id, {"succeeded", "dead"})

    async def both_spans() -> list[Any] | None:
        spans = _run_spans(observed, "flaky_job")
        return spans if len(spans) == 2 else None

    spans = await eventually(both_spans, what="a span per attempt")
    assert {format(s.context.trace_id, "032x") for s in spans} == {run["trace_id"]}
    assert sorted(s.attributes["run.attempt"] for s in spans) == [1, 2]

    data = observed.metrics.get_metrics_data()
    assert data is not None
    points = [
        (dict(point.attributes or {}), point.value)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "worker.run.attempts"
        for point in metric.data.data_points
        if isinstance(point, NumberDataPoint) and (point.attributes or {}).get("job") == "flaky_job"
    ]
    assert sorted((attrs["status"], value) for attrs, value in points) == [
        ("failed", 1),
        ("succeeded", 1),
    ]
