"""The application factory: `create_app(settings)`; the lifespan owns every resource."""

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from loguru import logger

import app.workers.builtin  # noqa: F401  (registers the built-in workers)
from app.api.routes import dapr, health
from app.api.state import AppState
from app.core.config import Settings
from app.core.logging import configure_logging
from app.core.telemetry import create_tracer_provider, instrument
from app.dapr.sidecar import Sidecar
from app.db.mongo import create_client, database_of
from app.dispatch.dispatcher import Dispatcher
from app.repositories.runs import RunRepository
from app.workers.registry import Registry
from app.workers.registry import registry as default_registry


def create_app(settings: Settings | None = None, registry: Registry | None = None) -> FastAPI:
    settings = settings or Settings()
    registry = registry or default_registry
    configure_logging(settings.serilog)
    instance = settings.app.instance_id or f"{socket.gethostname()}-{os.getpid()}"
    tracer_provider = create_tracer_provider(settings, instance)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, AppState]]:
        mongo = create_client(settings)
        try:
            async with Sidecar(settings) as sidecar:
                db = database_of(mongo)
                runs = RunRepository(db)
                await runs.ensure_indexes()
                dispatcher = Dispatcher(db=db, runs=runs, settings=settings, instance=instance)
                state = AppState(
                    settings=settings,
                    registry=registry,
                    mongo=mongo,
                    sidecar=sidecar,
                    dispatcher=dispatcher,
                    instance=instance,
                )
                logger.bind(instance=instance, workers=[w.name for w in registry]).info(
                    "worker started"
                )
                yield {"app": state}
        finally:
            await mongo.close()
            tracer_provider.shutdown()
            logger.bind(instance=instance).info("worker stopped")

    app = FastAPI(
        title="aevatar-worker",
        summary="Background processing for the Aevatar platform, driven by the Dapr sidecar.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.include_router(health.router)
    app.include_router(dapr.router)
    app.include_router(dapr.binding_router(registry))
    instrument(app, tracer_provider)
    return app
