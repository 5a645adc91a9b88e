"""What every part of the run engine works with: built once per app, shared by all of them."""

from dataclasses import dataclass

from app.actors.client import ActorClient
from app.core.config import WorkerSection
from app.repositories.runs import RunRepository
from app.workers.registry import Registry


@dataclass(frozen=True)
class EngineParts:
    registry: Registry
    runs: RunRepository
    actors: ActorClient
    instance: str
    """This process's name in the run history and in every lease it takes."""
    settings: WorkerSection
