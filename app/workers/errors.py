"""The errors a handler raises to steer its run. Map them by class, never by message."""

from app.core.errors import AevatarError


class WorkerError(AevatarError):
    """The root of the errors a handler steers its run with (app/core/errors.py)."""


class RetryLater(WorkerError):
    """A passing failure: retry this run, after `defer_seconds` if given (else the backoff)."""

    def __init__(self, message: str = "", *, defer_seconds: float | None = None) -> None:
        super().__init__(message)
        self.defer_seconds = defer_seconds


class GiveUp(WorkerError):
    """A failure that retrying cannot fix: the run goes to the dead set at once."""


class RunCancelled(WorkerError):
    """Raised inside a handler at a chunk boundary when an operator cancelled its run."""


class LeaseLost(WorkerError):
    """This instance no longer owns the run (its lease expired and another took it over)."""
