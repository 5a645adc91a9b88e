"""What the dispatcher refuses, with the fields a route needs to answer."""

from typing import Any

from pydantic import ValidationError

from app.models.runs import JobRun


class DispatchError(Exception):
    """The root of the dispatcher's refusals."""


class UnknownJob(DispatchError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no job named {name!r} is registered; GET /api/jobs lists them")
        self.name = name


class PayloadInvalid(DispatchError):
    def __init__(self, job: str, reason: str, errors: list[Any] | None = None) -> None:
        super().__init__(f"payload for {job!r} is invalid: {reason}")
        self.job = job
        self.errors = errors or [{"msg": reason}]

    @classmethod
    def of(cls, job: str, error: ValidationError) -> "PayloadInvalid":
        return cls(job, str(error), list(error.errors(include_url=False)))


class RunNotActionable(DispatchError):
    def __init__(self, run: JobRun, action: str, reason: str) -> None:
        super().__init__(f"cannot {action} run {run.id}: {reason}")
        self.run = run
        self.action = action
