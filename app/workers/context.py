"""What a handler receives beside its payload: its run, and its collaborators, explicitly."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel

from app.core.config import Settings
from app.db.mongo import Database
from app.integrations.http import ResilientHttp
from app.models.runs import Progress, RunTrigger
from app.repositories.sync_positions import SyncPositionRepository
from app.workers.errors import RunCancelled

if TYPE_CHECKING:
    from loguru import Logger

SectionT = TypeVar("SectionT", bound=BaseModel)


class RunControl(Protocol):
    """The dispatcher's side of a running run: progress, checkpoints, cancellation."""

    async def save(self, progress: Progress, checkpoint: Any, *, save_checkpoint: bool) -> bool:
        """Persists progress; returns whether an operator asked to cancel. Raises LeaseLost."""
        ...


@dataclass
class JobContext:
    run_id: str
    job: str
    attempt: int
    trigger: RunTrigger
    started_at: datetime
    instance: str
    db: Database
    settings: Settings
    log: "Logger"
    http: ResilientHttp
    positions: SyncPositionRepository
    checkpoint: Any = None
    """Where a data processor's previous attempt stopped (None: start from the beginning)."""
    chunk_size: int | None = None
    control: RunControl | None = field(default=None, repr=False)
    sections: Mapping[type[BaseModel], BaseModel] = field(default_factory=dict, repr=False)

    def section(self, model: type[SectionT]) -> SectionT:
        """A settings section declared with `@registry.section(...)`, as read at start-up."""
        value = self.sections.get(model)
        if not isinstance(value, model):
            raise LookupError(
                f"{model.__qualname__} is not a declared settings section: decorate it with "
                '@registry.section("Name") in a module the app loads'
            )
        return value

    async def report_progress(self, *, done: int, total: int | None = None) -> None:
        if self.control is not None:
            await self.control.save(Progress(done=done, total=total), None, save_checkpoint=False)

    async def chunk_done(self, *, checkpoint: Any, done: int, total: int | None = None) -> None:
        """Saves progress and the checkpoint after a chunk. Raises RunCancelled when an operator
        cancelled the run (stop here: the next chunk is not started), LeaseLost when another
        instance took the run over."""
        self.checkpoint = checkpoint
        if self.control is None:
            return
        if await self.control.save(
            Progress(done=done, total=total), checkpoint, save_checkpoint=True
        ):
            raise RunCancelled(f"run {self.run_id} cancelled by an operator after {done} items")


@dataclass
class BatchContext:
    """What a batch handler receives beside its items: the runs they belong to (`contexts[i]`
    is item i's) and the collaborators every handler has."""

    contexts: list[JobContext]
    db: Database
    settings: Settings
    instance: str
    log: "Logger"

    @property
    def run_ids(self) -> list[str]:
        return [context.run_id for context in self.contexts]
