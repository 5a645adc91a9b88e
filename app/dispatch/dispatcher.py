"""The dispatcher: the run engine's three parts behind one name, built together.

- `intake` (app/dispatch/intake.py): every trigger becomes a stored run;
- `sequences` (app/dispatch/sequencing.py): the runs of one key, one at a time, in order;
- `actions` (app/dispatch/run_actions.py): an operator's cancel, retry and requeue.
Execution is the executor's (app/dispatch/executor.py).
"""

from dataclasses import dataclass

from app.actors.client import ActorClient
from app.core.config import WorkerSection
from app.dispatch.executor import RunExecutor
from app.dispatch.intake import RunIntake
from app.dispatch.run_actions import RunActions
from app.dispatch.sequencing import KeySequences
from app.repositories.runs import RunRepository
from app.workers.registry import Registry


@dataclass(frozen=True)
class Dispatcher:
    intake: RunIntake
    sequences: KeySequences
    actions: RunActions
    executor: RunExecutor
    instance: str

    @classmethod
    def create(
        cls,
        *,
        registry: Registry,
        runs: RunRepository,
        executor: RunExecutor,
        actors: ActorClient,
        instance: str,
        engine: WorkerSection,
    ) -> "Dispatcher":
        sequences = KeySequences(
            registry=registry,
            runs=runs,
            executor=executor,
            actors=actors,
            instance=instance,
            engine=engine,
        )
        intake = RunIntake(
            registry=registry,
            runs=runs,
            executor=executor,
            actors=actors,
            sequences=sequences,
            instance=instance,
            engine=engine,
        )
        actions = RunActions(runs=runs, executor=executor, intake=intake)
        return cls(
            intake=intake,
            sequences=sequences,
            actions=actions,
            executor=executor,
            instance=instance,
        )
