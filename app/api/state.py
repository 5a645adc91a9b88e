"""The resources the lifespan opens, handed to the routes through `request.state`."""

from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient

from app.core.config import Settings
from app.dapr.sidecar import Sidecar
from app.dispatch.dispatcher import Dispatcher
from app.dispatch.poller import RunPoller
from app.repositories.runs import RunRepository
from app.repositories.schedules import ScheduleRepository
from app.workers.registry import Registry


@dataclass(frozen=True)
class AppState:
    settings: Settings
    registry: Registry
    mongo: AsyncMongoClient[dict[str, Any]]
    sidecar: Sidecar
    dispatcher: Dispatcher
    poller: RunPoller
    runs: RunRepository
    schedules: ScheduleRepository
    instance: str
