"""What an operator verb may refuse with: the verb was understood and cannot be done (no such
run, job or schedule; a run in a state the verb does not apply to; the sidecar said no). A face
shows the refusal's message; the API maps each to its HTTP status (`app/api/errors.py`)."""

from app.dapr.sidecar import SidecarError
from app.dispatch.errors import DispatchError
from app.operations.actions import UnknownSchedule
from app.repositories.runs import UnknownRun

REFUSALS = (DispatchError, UnknownRun, UnknownSchedule, SidecarError)
