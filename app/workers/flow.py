"""What a workflow function receives: `Flow`, over Dapr Workflow's orchestration context.

A workflow function is replayed from its history after every step it waits for, so it must be
deterministic: it reads time from `flow.now`, never the clock, and does its work in steps. A
step is another registered job, run as a run of its own (a child of the workflow's run,
retried and dead-lettered as that job is); `yield flow.step(job, payload)` gives the step's
result, or raises `StepFailed` when its run is dead, which the workflow may catch to
compensate.
"""

from collections.abc import Callable, Generator, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar, overload

from dapr.ext.workflow import DaprWorkflowContext, TaskFailedError, when_all, when_any
from pydantic import BaseModel

from app.workers.handlers import ActivityFunction, ContextHandler, PayloadHandler

PayloadT = TypeVar("PayloadT", bound=BaseModel)

STEP_ACTIVITY = "aevatar_step"
"""The one activity every step runs through: it runs the step's job as a child run."""

Waitable = Any
"""Dapr Workflow's durable task: what a workflow yields (a step, a timer, an event, a fan-in)."""

StepFailed = TaskFailedError
"""Raised at `yield flow.step(...)` when the step's run is dead (its attempts used up)."""

Steps = Generator[Any, Any, Any]
"""What a workflow function is: a generator that yields what `Flow` makes (steps, timers, waits
for events) and returns the workflow's result."""


class StepJob(Protocol):
    """What a step needs of a registered job."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...


JobOfHandler = Callable[[Callable[..., Any]], StepJob | None]
"""The registry's lookup of the job a decorated function was registered as."""


class Flow:
    def __init__(self, context: DaprWorkflowContext, job_of: JobOfHandler) -> None:
        self._context = context
        self._job_of = job_of
        self._waiting = False  # the status says what it waited for: cleared by the next step

    @property
    def instance_id(self) -> str:
        """The workflow instance's id: its run's id."""
        instance: str = self._context.instance_id
        return instance

    @property
    def now(self) -> datetime:
        """The time as this replay of the workflow sees it (the same on every replay)."""
        now: datetime = self._context.current_utc_datetime
        return now

    @overload
    def step(self, job: ContextHandler, *, name: str | None = None) -> Waitable: ...
    @overload
    def step(
        self, job: PayloadHandler[PayloadT], payload: PayloadT, *, name: str | None = None
    ) -> Waitable: ...
    @overload
    def step(
        self, job: ActivityFunction[PayloadT], payload: PayloadT, *, name: str | None = None
    ) -> Waitable: ...
    def step(self, job: Any, payload: BaseModel | None = None, *, name: str | None = None) -> Any:
        """A registered job or activity, run as a step (its result: what it returned). `name`
        tells two steps of the same job apart in the history."""
        registered = self._job_of(job)
        if registered is None:
            raise LookupError(f"{getattr(job, '__name__', job)!r} is not a registered job")
        if registered.kind == "workflow":
            raise TypeError(f"{registered.name!r} is a workflow, not a job a step can run")
        if self._waiting:
            self._context.set_custom_status("")
            self._waiting = False
        data = payload.model_dump(mode="json") if payload is not None else None
        step = {"job": registered.name, "payload": data, "step": name or registered.name}
        return self._context.call_activity(STEP_ACTIVITY, input=step)

    def all(self, steps: Sequence[Waitable]) -> Waitable:
        """Fan-in: the results of every one, in order, once all are done (or the first failure)."""
        return when_all(list(steps))

    def any(self, steps: Sequence[Waitable]) -> Waitable:
        """A race: the first of them to finish (the task itself; `.get_result()` reads it)."""
        return when_any(list(steps))

    def sleep(self, delay: timedelta) -> Waitable:
        """A durable timer: it survives restarts of the app and of the sidecar. The run's page
        shows what the workflow waits for (`set_status` after it says otherwise)."""
        self._context.set_custom_status(f"waiting for a timer, until {_utc(self.now + delay)}")
        self._waiting = True
        return self._context.create_timer(delay)

    def wait_for_event(self, name: str, *, timeout: timedelta | None = None) -> Waitable:
        """An external event raised on this instance (an approval, with its data); with a
        timeout, `TimeoutError` at the yield when it does not come in time. The run's page
        shows the wait."""
        until = f", at most until {_utc(self.now + timeout)}" if timeout else ""
        self._context.set_custom_status(f"waiting for event {name!r}{until}")
        self._waiting = True
        return self._context.wait_for_external_event(name, timeout=timeout)

    def set_status(self, status: str) -> None:
        """A short text the run's page shows for the instance while it runs."""
        self._context.set_custom_status(status)
        self._waiting = False


def _utc(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


FlowFunction = Callable[[Flow], Steps]
"""A workflow registered without `payload=`: `def flow(flow: Flow) -> Steps`."""
PayloadFlowFunction = Callable[[PayloadT, Flow], Steps]
"""A workflow registered with `payload=Model`: `def flow(item: Model, flow: Flow) -> Steps`."""
