"""What the engine needs of the workflow host to run a workflow job's run and to act on its
instance for an operator (app/workflows/host.py implements it; the engine does not import it)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel

from app.models.runs import JobRun
from app.workers.registry import Job


@dataclass(frozen=True)
class InstanceView:
    """A workflow instance as the sidecar tells it."""

    status: str  # Dapr's: PENDING, RUNNING, SUSPENDED, COMPLETED, FAILED, TERMINATED
    waiting_on: str | None  # what the workflow said it waits for (a timer, an event), if any
    updated_at: datetime


class WorkflowDriver(Protocol):
    async def drive(self, job: Job, run: JobRun, payload: BaseModel | None) -> Any:
        """Starts the run's workflow instance (unless it exists: a later attempt of the same
        run, after its instance died, takes it up where it is) and waits for its end."""
        ...

    async def terminate(self, run_id: str) -> None:
        """Ends the run's workflow instance: an operator cancelled the run."""
        ...

    async def raise_event(self, run_id: str, name: str, data: Any) -> None:
        """Raises an external event (an approval, with its data) on the run's instance."""
        ...

    async def suspend(self, run_id: str) -> None:
        """Suspends the run's instance: it runs no further step until resumed (events raised
        meanwhile wait for it)."""
        ...

    async def resume(self, run_id: str) -> None:
        """Resumes a suspended instance where it stopped."""
        ...

    async def purge(self, run_id: str) -> None:
        """Deletes a finished instance's state (its history in the sidecar's state store); the
        run stays in the run history."""
        ...

    async def rerun_from_failed_step(self, run_id: str, new_instance_id: str) -> str:
        """Makes `new_instance_id`, a new instance of a failed run's workflow that replays the
        run's history up to the step that failed and runs that step and the rest again (the
        steps before it keep their results); the failed step's name."""
        ...

    async def describe(self, run_id: str) -> InstanceView | None:
        """The run's instance now (None when the sidecar does not know it)."""
        ...
