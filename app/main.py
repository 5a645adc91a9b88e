"""The application factory: `create_app(settings)`; the lifespan owns every resource."""

import asyncio
import importlib
import os
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from dapr.ext.fastapi import DaprActor
from fastapi import FastAPI
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.trace.export import SpanExporter
from pydantic import BaseModel
from starlette.types import ASGIApp

from app.actors.hosting import configure_actor_runtime, register_actors
from app.actors.late_client import LateActorClient
from app.api.access import AccessGate
from app.api.body_limit import BodyLimit
from app.api.errors import install_error_handlers
from app.api.routes import dapr, dead_letters, health, jobs, metrics, runs, schedules
from app.api.worker_app import WorkerApp
from app.core.config import SectionInvalid, Settings, read_section
from app.core.logging import configure_logging
from app.core.open_access import refuse_open_access
from app.core.telemetry import create_telemetry, instrument
from app.core.version import VERSION
from app.dashboard import mount_dashboard
from app.services import Starting
from app.startup import AppStart
from app.workers.registry import RegistrationError, Registry
from app.workers.registry import registry as default_registry

BUILTIN_WORKERS = "app.workers.builtin"

# Paths the app serves itself: a cron binding must not be named after one of them.
_RESERVED_BINDING_NAMES = {
    "api", "dapr", "events", "job", "actors", "healthz", "readyz", "docs", "metrics", "dashboard",
}  # fmt: skip


def create_app(
    settings: Settings | None = None,
    registry: Registry | None = None,
    *,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
) -> FastAPI:
    settings = settings or Settings()
    _configure_logging_and_refuse_open_access(settings)
    if registry is None:
        registry = default_registry
        for module in [BUILTIN_WORKERS, *settings.worker.modules]:
            importlib.import_module(module)
    sections = _check(registry)
    # The pid makes each start of a process an instance of its own: a restarted process must not
    # take the leases of the one that died for its own.
    instance = f"{settings.app.instance_id or socket.gethostname()}-{os.getpid()}"
    telemetry = create_telemetry(
        settings, instance, span_exporter=span_exporter, metric_reader=metric_reader
    )

    starting = Starting(instance=instance, settings=settings, registry=registry)
    actor_client = LateActorClient() if settings.dapr.host_actors else None
    start = AppStart(
        starting,
        telemetry=telemetry,
        sections=sections,
        actor_client=actor_client,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Starting]]:
        async with AsyncExitStack() as stack:
            stack.callback(telemetry.shutdown)
            if actor_client is not None:
                await register_actors(dapr_actor, run_here=starting.run_here, client=actor_client)
            opening = asyncio.create_task(start.run(stack), name="start-up")
            try:
                yield {"starting": starting}
            finally:
                opening.cancel()
                await asyncio.gather(opening, return_exceptions=True)
                await start.stop()

    app = WorkerApp(
        title="aevatar-worker",
        summary="Background processing for the Aevatar platform, driven by the Dapr sidecar.",
        version=VERSION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    # Ours first: DaprActor adds a GET /healthz of its own, and the first route registered wins.
    app.include_router(health.router)
    configure_actor_runtime(settings)
    dapr_actor = DaprActor(app, router_tags=["dapr"])
    _include_routes(app, settings, registry)
    binding_paths = [f"/{job.binding}" for job in registry if job.binding]

    def guarded(inner: ASGIApp) -> ASGIApp:
        """The access gate, then the body limit, in front of `inner`."""
        limited = BodyLimit(
            inner,
            max_bytes=settings.api.max_request_bytes,
            bulk_max_bytes=settings.api.max_request_bytes * settings.worker.max_in_flight,
        )
        return AccessGate(
            limited,
            sidecar_token=settings.dapr.app_api_token,
            operator_token=settings.api.operator_token,
            viewer_token=settings.api.viewer_token,
            binding_paths=binding_paths,
        )

    app.add_middleware(guarded)
    # The same gate and limit stand in front of the deliveries, which bypass FastAPI.
    app.serve_deliveries(guarded)
    instrument(app, telemetry)
    return app


def _include_routes(app: FastAPI, settings: Settings, registry: Registry) -> None:
    for router in (
        dapr.router,
        jobs.router,
        runs.router,
        dead_letters.router,
        schedules.router,
        metrics.router,
    ):
        app.include_router(router)
    app.include_router(dapr.binding_router(registry))
    mount_dashboard(app, settings)


def _configure_logging_and_refuse_open_access(settings: Settings) -> None:
    configure_logging(settings.serilog, secrets=settings.secrets())
    refuse_open_access(settings)


def _read_sections(registry: Registry) -> dict[type[BaseModel], BaseModel]:
    """Each worker module's own settings, read once: a refused value stops the start."""
    try:
        return {model: read_section(name, model) for model, name in registry.sections().items()}
    except SectionInvalid as exc:
        raise RegistrationError(str(exc)) from exc


def _check(registry: Registry) -> dict[type[BaseModel], BaseModel]:
    """Stops the start on a registry the app cannot serve; returns the modules' settings."""
    if len(registry) == 0:
        raise RegistrationError(f"no jobs registered: is {BUILTIN_WORKERS} importable?")
    for job in registry:
        if job.binding and job.binding.split("/")[0] in _RESERVED_BINDING_NAMES:
            raise RegistrationError(
                f"job {job.name!r}: binding name {job.binding!r} clashes with a route "
                "of the app; name the cron binding component something else"
            )
    return _read_sections(registry)
