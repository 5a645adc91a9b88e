"""The services start-up opens, handed to the routes of both faces through `request.state`,
and the typed dependencies a route asks for them with, one per service."""

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from pymongo import AsyncMongoClient

from app.core.config import Settings
from app.core.errors import Refused
from app.dapr.sidecar import Sidecar
from app.dispatch.dispatcher import Dispatcher
from app.dispatch.heartbeat import Heartbeat
from app.observability.metrics import RunMetrics
from app.operations.actions import OperatorActions
from app.repositories.audit import AuditRepository
from app.repositories.instances import InstanceRepository
from app.repositories.login_failures import LoginFailures
from app.repositories.pauses import PauseRepository
from app.repositories.revoked_sessions import RevokedSessions
from app.repositories.run_counts import RunCounts
from app.repositories.run_history import RunHistory
from app.repositories.run_stats import RunStatsRepository
from app.repositories.runs import RunRepository
from app.repositories.schedules import ScheduleRepository
from app.workers.registry import Registry


@dataclass(frozen=True)
class AppState:
    """What start-up opens. Routes never take it whole: each asks for the services it uses."""

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
    login_failures: LoginFailures
    revoked_sessions: RevokedSessions


class StillStarting(Refused):
    """A request that needs the app's resources before start-up has opened them: 503."""

    status_code = 503

    def __init__(self, waiting_for: str) -> None:
        super().__init__(f"starting: waiting for {waiting_for}")
        self.waiting_for = waiting_for

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


@dataclass
class Starting:
    """What every request sees from the first one on. The probes, the subscriptions and the
    actor types are served at once (daprd reads the last two once, when it first reaches the
    app); the rest needs `state`, which start-up sets once the sidecar and MongoDB answer."""

    instance: str
    settings: Settings
    registry: Registry
    waiting_for: str = "start-up"
    state: AppState | None = None
    failure: str | None = None

    @property
    def phase(self) -> str:
        if self.failure is not None:
            return "failed"
        return "starting" if self.state is None else "started"

    def require(self) -> AppState:
        if self.state is None:
            raise StillStarting(self.failure or self.waiting_for)
        return self.state

    async def run_here(self, run_id: str) -> str:
        """For the key sequencer actor, which may be called before start-up is done."""
        return await self.require().dispatcher.run_here(run_id)


async def get_starting(request: Request) -> Starting:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per request.
    starting: Starting = request.state.starting
    return starting


async def get_state(request: Request) -> AppState:
    """The app's resources; `StillStarting` (503) until start-up has opened them."""
    return (await get_starting(request)).require()


_Service = TypeVar("_Service")


def _opened(
    pick: Callable[[AppState], _Service],
) -> Callable[[Request], Coroutine[Any, Any, _Service]]:
    async def service(request: Request) -> _Service:
        return pick(await get_state(request))

    return service


async def _workers(request: Request) -> Registry:
    return (await get_starting(request)).registry


async def _settings(request: Request) -> Settings:
    return (await get_starting(request)).settings


revocations_of = _opened(lambda state: state.revoked_sessions)

StartingApp = Annotated[Starting, Depends(get_starting)]
# Known from the first request on:
Workers = Annotated[Registry, Depends(_workers)]
AppSettings = Annotated[Settings, Depends(_settings)]
# Opened by start-up (503 until then):
Engine = Annotated[Dispatcher, Depends(_opened(lambda state: state.dispatcher))]
Actions = Annotated[OperatorActions, Depends(_opened(lambda state: state.actions))]
Runs = Annotated[RunRepository, Depends(_opened(lambda state: state.runs))]
History = Annotated[RunHistory, Depends(_opened(lambda state: state.history))]
Counts = Annotated[RunCounts, Depends(_opened(lambda state: state.counts))]
Stats = Annotated[RunStatsRepository, Depends(_opened(lambda state: state.run_stats))]
Schedules = Annotated[ScheduleRepository, Depends(_opened(lambda state: state.schedules))]
Pauses = Annotated[PauseRepository, Depends(_opened(lambda state: state.pauses))]
Audit = Annotated[AuditRepository, Depends(_opened(lambda state: state.audit))]
Instances = Annotated[InstanceRepository, Depends(_opened(lambda state: state.instances))]
Heartbeats = Annotated[Heartbeat, Depends(_opened(lambda state: state.heartbeat))]
Metrics = Annotated[RunMetrics, Depends(_opened(lambda state: state.metrics))]
FailedLogins = Annotated[LoginFailures, Depends(_opened(lambda state: state.login_failures))]
Revocations = Annotated[RevokedSessions, Depends(revocations_of)]
