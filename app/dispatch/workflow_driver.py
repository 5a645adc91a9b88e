"""What the engine needs of the workflow host to run a workflow job's run and to act on its
instance for an operator (app/workflows/host.py implements it; the engine does not import it)."""

from typing import Any, Protocol

from pydantic import BaseModel

from app.models.runs import JobRun
from app.workers.registry import Job


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
