"""One root for the service's own errors, `AevatarError`, in three branches a caller maps by
class, never by message:

- `WorkerError` (app/workers/errors.py): what a handler raises to steer its run: retry it
  (`RetryLater`), give up at once (`GiveUp`), and the engine's own `RunCancelled`, `LeaseLost`.
- `Refused`: a request understood and refused: an operator verb, a trigger or a firing that
  cannot be done (no such job, run or schedule; a payload the job refuses; a run in a state the
  verb does not apply to; the sidecar said no; start-up not done). Each says its HTTP status;
  `app/api/errors.py` answers them all in one place, the dashboard shows their message.
- `StartRefused`: settings or workers the app will not start with.

Everything else the service defines (an actor or external service away, a result too large to
store) descends from the root directly.
"""

from typing import Any, ClassVar


class AevatarError(Exception):
    """The root of the service's own errors."""


class Refused(AevatarError):
    """A request understood and refused; `status_code` is its HTTP answer."""

    status_code: ClassVar[int] = 400

    def details(self) -> dict[str, Any]:
        """Fields the JSON answer carries beside `detail`."""
        return {}

    def headers(self) -> dict[str, str]:
        return {}


class StartRefused(AevatarError):
    """The app does not start with these settings or these workers; the message says why."""
