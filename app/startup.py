"""Start-up in the background: the app serves its probes from the first moment, and opens its
resources once the sidecar and MongoDB answer, however late they come.

On Kubernetes the sidecar and the database may come up after the app. While they do not answer,
`/healthz` says the process is alive, `/readyz` says what start-up waits for, deliveries are
answered RETRY and the other routes 503; SIGTERM stops the app at once in every phase (the wait
is a cancellable sleep, never a thread). A start-up that fails for good (not a dependency still
away) turns `/healthz` to 503, so that the orchestrator restarts the process.
"""

import asyncio
import gc
import socket
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import httpx
from loguru import logger
from prometheus_client import CollectorRegistry
from pydantic import BaseModel
from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure, PyMongoError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from app.actors.client import ActorClient
from app.actors.hosting import connect_actor_client
from app.actors.late_client import LateActorClient
from app.core.config import Settings
from app.core.telemetry import Telemetry
from app.dapr.sidecar import Sidecar
from app.db.mongo import Document, create_client, database_of
from app.dispatch.context_factory import ContextFactory
from app.dispatch.delivery_journal import DeliveryJournal
from app.dispatch.died_attempts import record_died_attempts
from app.dispatch.dispatcher import Dispatcher
from app.dispatch.engine import EngineParts
from app.dispatch.executor import RunExecutor
from app.dispatch.heartbeat import Heartbeat
from app.dispatch.transactions import RunTransactions
from app.integrations.http import DEFAULT_TIMEOUT_SECONDS, ResilientHttp
from app.observability.metrics import RunMetrics
from app.observability.run_stats import RunStats
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
from app.services import AppState, Starting
from app.workflows.host import WorkflowHost

_MAX_WAIT_SECONDS = 5.0


class AppStart:
    def __init__(
        self,
        starting: Starting,
        *,
        telemetry: Telemetry,
        sections: dict[type[BaseModel], BaseModel],
        actor_client: LateActorClient | None,
    ) -> None:
        self._starting = starting
        self._telemetry = telemetry
        self._sections = sections
        self._actor_client = actor_client
        self._beating: asyncio.Task[None] | None = None
        self._workflows: WorkflowHost | None = None

    async def run(self, stack: AsyncExitStack) -> None:
        """Opens everything, waiting as long as it takes; the background task of the lifespan."""
        try:
            await self._open(stack)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._starting.failure = f"{type(exc).__name__}: {exc}"
            logger.exception("start-up failed: /healthz answers 503 from now on")

    async def stop(self) -> None:
        state = self._starting.state
        if state is None:
            return
        if self._workflows is not None:
            await self._workflows.stop()
        await state.dispatcher.stop()
        state.heartbeat.stop()
        if self._beating is not None:
            await self._beating
        logger.bind(instance=state.instance).info("worker stopped")

    async def _open(self, stack: AsyncExitStack) -> None:
        starting, settings = self._starting, self._starting.settings
        mongo = create_client(settings)
        stack.push_async_callback(mongo.close)
        sidecar = await stack.enter_async_context(Sidecar(settings))
        outbound = await stack.enter_async_context(
            httpx.AsyncClient(timeout=DEFAULT_TIMEOUT_SECONDS)
        )
        actors = ActorClient(await stack.enter_async_context(sidecar.client(timeout=60)))
        if self._actor_client is not None:
            await self._waiting_for("the Dapr sidecar", sidecar.check_outbound, httpx.HTTPError)
            await connect_actor_client(self._actor_client)
        db = database_of(mongo)
        run_repository = RunRepository(db)
        await self._waiting_for("MongoDB", run_repository.ensure_indexes, ConnectionFailure)
        run_metrics = RunMetrics(
            self._telemetry.meter, registry=CollectorRegistry(), stats=RunStats()
        )
        parts = EngineParts(
            registry=starting.registry,
            runs=run_repository,
            actors=actors,
            instance=starting.instance,
            settings=settings.worker,
        )
        if settings.dapr.host_actors and WorkflowHost.needed(starting.registry):
            # Dapr Workflow runs on actors: without them this app takes no workflow work.
            self._workflows = WorkflowHost(
                registry=starting.registry, settings=settings, runs=run_repository
            )
        transactional = [job.name for job in starting.registry if job.transactional]
        transactions = RunTransactions(db) if transactional else None
        if transactions is not None:
            await self._waiting_for(
                "MongoDB transactions",
                lambda: transactions.ensure_ready(transactional),
                ConnectionFailure,
            )
        executor = RunExecutor(
            workflows=self._workflows,
            transactions=transactions,
            parts=parts,
            contexts=ContextFactory(
                db=db,
                settings=settings,
                http=ResilientHttp(outbound),
                instance=starting.instance,
                sections=self._sections,
            ),
            tracer=self._telemetry.tracer,
            metrics=run_metrics,
        )
        journal = DeliveryJournal.at(
            settings.worker.journal_dir,
            database=db.name,
            instance_id=settings.app.instance_id or socket.gethostname(),
        )
        died = journal.left()
        if died:
            await self._waiting_for(
                "the attempts that died with this instance to be recorded",
                lambda: record_died_attempts(died, parts),
                PyMongoError,
            )
        journal.open()
        schedules, pauses = ScheduleRepository(db), PauseRepository(db)
        dispatcher = Dispatcher(
            parts,
            executor,
            schedules=schedules,
            pauses=pauses,
            workflows=self._workflows,
            journal=journal,
        )
        heartbeat = Heartbeat(parts=parts, executor=executor, metrics=run_metrics, db=db)
        state = _app_state(
            settings=settings,
            parts=parts,
            mongo=mongo,
            sidecar=sidecar,
            dispatcher=dispatcher,
            metrics=run_metrics,
            heartbeat=heartbeat,
            schedules=schedules,
            pauses=pauses,
        )
        await state.login_failures.ensure_indexes()
        await state.revoked_sessions.ensure_indexes()
        dispatcher.start()
        if self._workflows is not None:
            await self._workflows.start(dispatcher)
        self._beating = asyncio.create_task(heartbeat.run(), name="heartbeat")
        starting.state = state
        # What start-up made (modules, schemas, the registry) lives as long as the process:
        # frozen out of the collector's sight, so that a full collection does not walk it,
        # a pause of hundreds of ms that every delivery in flight would wait through.
        gc.freeze()
        logger.bind(instance=starting.instance, jobs=[w.name for w in starting.registry]).info(
            "worker started"
        )

    async def _waiting_for(
        self, what: str, attempt: Callable[[], Awaitable[Any]], away: type[Exception]
    ) -> None:
        """`attempt` until it succeeds, saying what start-up waits for; each failure logged."""
        self._starting.waiting_for = what

        def log(retry_state: RetryCallState) -> None:
            outcome = retry_state.outcome
            error = outcome.exception() if outcome is not None else None
            logger.bind(attempt=retry_state.attempt_number, error=str(error)[:300]).warning(
                f"start-up waits for {what}"
            )

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(away),
            wait=wait_exponential(multiplier=0.2, max=_MAX_WAIT_SECONDS),
            before_sleep=log,
            reraise=True,
        )
        async for try_once in retrying:
            with try_once:
                await attempt()


def _app_state(
    *,
    settings: Settings,
    parts: EngineParts,
    mongo: AsyncMongoClient[Document],
    sidecar: Sidecar,
    dispatcher: Dispatcher,
    metrics: RunMetrics,
    heartbeat: Heartbeat,
    schedules: ScheduleRepository,
    pauses: PauseRepository,
) -> AppState:
    """The services both faces use, over what start-up opened."""
    db = database_of(mongo)
    audit = AuditRepository(db)
    history = RunHistory(db)
    actions = OperatorActions(
        dispatcher=dispatcher,
        history=history,
        schedules=schedules,
        pauses=pauses,
        sidecar=sidecar,
        audit=audit,
    )
    return AppState(
        settings=settings,
        registry=parts.registry,
        mongo=mongo,
        sidecar=sidecar,
        dispatcher=dispatcher,
        runs=parts.runs,
        history=history,
        counts=RunCounts(history),
        schedules=schedules,
        instance=parts.instance,
        actions=actions,
        pauses=pauses,
        audit=audit,
        instances=InstanceRepository(db),
        run_stats=RunStatsRepository(db),
        metrics=metrics,
        heartbeat=heartbeat,
        login_failures=LoginFailures(
            db,
            allowed=settings.api.login_failures_allowed,
            window=timedelta(minutes=settings.api.login_lockout_minutes),
        ),
        revoked_sessions=RevokedSessions(db),
    )
