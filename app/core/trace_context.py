"""The W3C trace context of the running code, as a run document records it."""

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator


def current_trace() -> dict[str, str | None]:
    """`trace_id` (for searching) and `traceparent` (for a later attempt to join the trace)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:  # no trace (tracing off, no traceparent): nothing to inject
        return {"trace_id": None, "traceparent": None}
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return {
        "trace_id": format(context.trace_id, "032x") if context.is_valid else None,
        "traceparent": carrier.get("traceparent"),
    }
