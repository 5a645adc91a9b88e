"""What a handler receives beside its payload: its collaborators, passed explicitly."""

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from app.core.config import Settings
from app.db.mongo import Database
from app.models.runs import RunTrigger

if TYPE_CHECKING:
    from loguru import Logger


@dataclass(frozen=True)
class JobContext:
    run_id: str
    job: str
    trigger: RunTrigger
    started_at: datetime
    instance: str
    db: Database
    settings: Settings
    log: "Logger"
