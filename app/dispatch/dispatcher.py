"""The dispatcher: every trigger becomes a tracked run; the handler's outcome is recorded on it."""

import time
import traceback
from datetime import datetime
from typing import Any

from loguru import logger
from opentelemetry import trace
from pydantic import BaseModel, ValidationError

from app.core.clock import utc_now
from app.core.config import Settings
from app.dapr.cloudevents import CloudEvent
from app.dapr.outcomes import DeliveryOutcome
from app.db.mongo import Database
from app.models.runs import JobRun, RunError, RunStatus, RunTrigger
from app.repositories.runs import RunRepository
from app.workers.context import JobContext
from app.workers.registry import Worker


class Dispatcher:
    def __init__(
        self, *, db: Database, runs: RunRepository, settings: Settings, instance: str
    ) -> None:
        self._db = db
        self._runs = runs
        self._settings = settings
        self._instance = instance

    async def deliver_event(self, worker: Worker, event: CloudEvent) -> DeliveryOutcome:
        """Runs `worker` on one CloudEvent and says what Dapr should do with the message.

        An exception here (the database is down) is the caller's RETRY: the message stays
        with Dapr until a run for it is recorded.
        """
        trigger = RunTrigger(type="event", event_id=event.id, topic=event.topic)
        assert worker.payload_model is not None
        try:
            payload = worker.payload_model.model_validate(event.data)
        except ValidationError as exc:
            await self._record_invalid(worker, trigger, exc)
            return DeliveryOutcome.DROP
        run = await self._execute(worker, trigger, payload)
        return (
            DeliveryOutcome.SUCCESS if run.status is RunStatus.SUCCEEDED else DeliveryOutcome.RETRY
        )

    async def fire_tick(self, worker: Worker, tick: datetime) -> JobRun:
        return await self._execute(worker, RunTrigger(type="cron", tick=tick), None)

    async def _execute(
        self, worker: Worker, trigger: RunTrigger, payload: BaseModel | None
    ) -> JobRun:
        now = utc_now()
        run = JobRun(
            id=self._runs.new_id(),
            job=worker.name,
            kind=worker.kind,
            status=RunStatus.RUNNING,
            trigger=trigger,
            created_at=now,
            started_at=now,
            instance=self._instance,
            trace_id=_current_trace_id(),
        )
        await self._runs.insert(run)
        log = logger.bind(job=worker.name, run_id=run.id, trigger=trigger.type)
        context = JobContext(
            run_id=run.id,
            job=worker.name,
            trigger=trigger,
            started_at=now,
            instance=self._instance,
            db=self._db,
            settings=self._settings,
            log=log,
        )
        started = time.perf_counter()
        result: dict[str, Any] | None = None
        error: RunError | None = None
        try:
            result = await (
                worker.handler(payload, context) if payload is not None else worker.handler(context)
            )
        except Exception as exc:
            error = RunError(
                type=type(exc).__name__, message=str(exc), traceback=traceback.format_exc()
            )
            log.exception("run failed")
        status = RunStatus.SUCCEEDED if error is None else RunStatus.FAILED
        duration_ms = (time.perf_counter() - started) * 1000
        await self._runs.finish(
            run_id=run.id,
            status=status,
            finished_at=utc_now(),
            duration_ms=duration_ms,
            result=result,
            error=error,
        )
        log.bind(status=status.value, duration_ms=round(duration_ms, 1)).info("run finished")
        return run.model_copy(update={"status": status, "result": result, "error": error})

    async def _record_invalid(
        self, worker: Worker, trigger: RunTrigger, exc: ValidationError
    ) -> None:
        now = utc_now()
        run = JobRun(
            id=self._runs.new_id(),
            job=worker.name,
            kind=worker.kind,
            status=RunStatus.DEAD,
            trigger=trigger,
            created_at=now,
            started_at=now,
            finished_at=now,
            duration_ms=0.0,
            instance=self._instance,
            error=RunError(type="ValidationError", message=str(exc)),
            trace_id=_current_trace_id(),
        )
        await self._runs.insert(run)
        logger.bind(job=worker.name, run_id=run.id, event_id=trigger.event_id).warning(
            "invalid payload dropped"
        )


def _current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
