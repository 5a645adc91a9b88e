"""What the dispatcher refuses, with the fields a route needs to answer."""

from typing import Any

from pydantic import ValidationError

from app.core.errors import Refused
from app.models.runs import JobRun


class DispatchError(Refused):
    """The root of the dispatcher's refusals (400 for one of no more precise kind)."""

    status_code = 400


class UnknownJob(DispatchError):
    status_code = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"no job named {name!r} is registered; GET /api/jobs lists them")
        self.name = name


class PayloadInvalid(DispatchError):
    status_code = 422

    def __init__(self, job: str, reason: str, errors: list[Any] | None = None) -> None:
        super().__init__(f"payload for {job!r} is invalid: {reason}")
        self.job = job
        self.errors = errors or [{"msg": reason}]

    @classmethod
    def of(cls, job: str, error: ValidationError) -> "PayloadInvalid":
        return cls(job, str(error), list(error.errors(include_url=False)))

    def details(self) -> dict[str, Any]:
        return {"errors": self.errors}


class RunNotActionable(DispatchError):
    status_code = 409

    def __init__(self, run: JobRun, action: str, reason: str) -> None:
        super().__init__(f"cannot {action} run {run.id}: {reason}")
        self.run = run
        self.action = action

    def details(self) -> dict[str, Any]:
        return {"status": self.run.status.value}


class JobNotPausable(DispatchError):
    status_code = 409

    def __init__(self, name: str) -> None:
        super().__init__(
            f"job {name!r} cannot be paused: it has no cron binding and no topic (nothing but "
            "an operator or a schedule starts it; pause the schedule instead)"
        )
        self.name = name
