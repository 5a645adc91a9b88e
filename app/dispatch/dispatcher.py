"""The dispatcher: the run engine's three parts behind one name, built together.

- `intake` (app/dispatch/intake.py): every trigger becomes a stored run;
- `sequences` (app/dispatch/sequencing.py): the runs of one key, one at a time, in order;
- `actions` (app/dispatch/run_actions.py): an operator's cancel, retry and requeue.
Execution is the executor's (app/dispatch/executor.py).
"""

from dataclasses import dataclass

from app.dispatch.engine import EngineParts
from app.dispatch.executor import RunExecutor
from app.dispatch.intake import RunIntake
from app.dispatch.run_actions import RunActions
from app.dispatch.sequencing import KeySequences


@dataclass(frozen=True)
class Dispatcher:
    intake: RunIntake
    sequences: KeySequences
    actions: RunActions
    executor: RunExecutor
    instance: str

    @classmethod
    def create(cls, parts: EngineParts, executor: RunExecutor) -> "Dispatcher":
        sequences = KeySequences(parts=parts, executor=executor)
        intake = RunIntake(parts=parts, executor=executor, sequences=sequences)
        actions = RunActions(runs=parts.runs, executor=executor, intake=intake)
        return cls(intake, sequences, actions, executor, parts.instance)
