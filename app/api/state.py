"""The resources the lifespan opens, handed to the routes through `request.state`."""

from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient

from app.api.actions import OperatorActions
from app.core.config import Settings
from app.dapr.sidecar import Sidecar
from app.dispatch.dispatcher import Dispatcher
from app.dispatch.heartbeat import Heartbeat
from app.dispatch.metrics import RunMetrics
from app.repositories.audit import AuditRepository
from app.repositories.instances import InstanceRepository
from app.repositories.pauses import PauseRepository
from app.repositories.run_counts import RunCounts
from app.repositories.run_history import RunHistory
from app.repositories.run_stats import RunStatsRepository
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
    runs: RunRepository
    history: RunHistory
    counts: RunCounts
    schedules: ScheduleRepository
    instance: str
    actions: OperatorActions
    pauses: PauseRepository
    audit: AuditRepository
    instances: InstanceRepository
    run_stats: RunStatsRepository
    metrics: RunMetrics
    heartbeat: Heartbeat
