"""OpenTelemetry: a tracer provider for the app, and FastAPI's server spans joined to the trace
that daprd propagates in `traceparent`."""

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from app.core.config import Settings


def create_tracer_provider(settings: Settings, instance: str) -> TracerProvider:
    resource = Resource.create({"service.name": settings.app.name, "service.instance.id": instance})
    return TracerProvider(resource=resource)


def instrument(app: FastAPI, provider: TracerProvider) -> None:
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="healthz,readyz"
    )


def tracer(provider: TracerProvider) -> trace.Tracer:
    return provider.get_tracer("aevatar-worker")
