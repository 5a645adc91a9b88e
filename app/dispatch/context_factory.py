"""Builds the context each attempt's handler receives."""

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from app.core.config import Settings
from app.db.coalescing import CoalescingDatabase
from app.db.mongo import Database
from app.integrations.http import ResilientHttp
from app.models.runs import JobRun
from app.repositories.runs import GROUP_TIMEOUT_SECONDS
from app.repositories.sync_positions import SyncPositionRepository
from app.workers.context import JobContext, RunControl
from app.workers.registry import Job


class ContextFactory:
    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        http: ResilientHttp,
        instance: str,
        sections: Mapping[type[BaseModel], BaseModel],
    ) -> None:
        # Handlers' concurrent insert_one calls go to the server together (app/db/coalescing.py).
        self._db = CoalescingDatabase(db, timeout_seconds=GROUP_TIMEOUT_SECONDS)
        # A transactional handler's writes go through its bound session, one by one.
        self._plain_db = db
        self._sections = sections
        self._settings = settings
        self._http = http
        self._positions = SyncPositionRepository(db)
        self._instance = instance

    def build(self, job: Job, run: JobRun, *, log: Any, control: RunControl) -> JobContext:
        return JobContext(
            run_id=run.id,
            job=job.name,
            attempt=run.attempt,
            trigger=run.trigger,
            started_at=run.started_at or run.created_at,
            instance=self._instance,
            db=self._plain_db if job.transactional else self._db,
            settings=self._settings,
            log=log,
            http=self._http,
            positions=self._positions,
            checkpoint=run.checkpoint,
            chunk_size=job.chunk_size,
            control=control,
            sections=self._sections,
        )
