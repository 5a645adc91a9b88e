"""What a worker's author imports:

from app.workers import GiveUp, JobContext, RetryLater, RunCancelled, registry
from app.workers import Flow, StepFailed, Steps  (a workflow's)
"""

from app.workers.context import BatchContext, JobContext
from app.workers.errors import GiveUp, LeaseLost, RetryLater, RunCancelled, WorkerError
from app.workers.flow import Flow, StepFailed, Steps
from app.workers.flow_control import Overlap
from app.workers.registry import CatchUp, RegistrationError, registry

__all__ = [
    "BatchContext",
    "CatchUp",
    "Flow",
    "GiveUp",
    "JobContext",
    "LeaseLost",
    "Overlap",
    "RegistrationError",
    "RetryLater",
    "RunCancelled",
    "StepFailed",
    "Steps",
    "WorkerError",
    "registry",
]
