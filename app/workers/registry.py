"""The registry of jobs: each is an async function registered by a decorator at import time.

One name throughout: a *job* is what a decorator registers (the function, its trigger and its
limits), the name the API, the run history and the dashboard show; a *run* is one execution of
a job; a *worker module* is a module that registers jobs, and *the worker* is this service.

The five kinds of the original service, one decorator each, and `manual` for jobs that only an
operator or a Jobs API schedule starts. Registration validates early (a coroutine function whose
parameters fit its payload, a unique name, a valid schedule, one handler per topic and binding),
so a mistake stops the app at start-up with a message that says what to fix, not at 3 a.m. The
decorators are typed with overloads: mypy rejects a handler that does not take what its
registration says it gets (`payload=OrderPlaced` means `(order: OrderPlaced, ctx: JobContext)`).
"""

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, TypedDict, TypeVar, Unpack, cast, get_type_hints, overload

from pydantic import BaseModel

from app.core.config import Settings
from app.core.errors import StartRefused
from app.dispatch.retry import RetryPolicy
from app.models.runs import JobKind
from app.workers.context import JobContext
from app.workers.fan_out import ChunkT, PlanHandler, fanned_out, planning_step
from app.workers.flow import FlowFunction, PayloadFlowFunction
from app.workers.flow_control import (
    OVERLAP_POLICIES,
    FlowLimits,
    InvalidRateLimit,
    Overlap,
    RateLimit,
)
from app.workers.handlers import (
    ActivityFunction,
    BatchHandler,
    ContextHandler,
    Handler,
    PayloadHandler,
    PayloadT,
)
from app.workers.schedule import InvalidSchedule, Schedule

SectionT = TypeVar("SectionT", bound=BaseModel)


DEFAULT_TIMEOUT_SECONDS = 300.0
# A workflow's run lasts as long as its instance: waits for approvals and timers included.
WORKFLOW_TIMEOUT_SECONDS = 30 * 24 * 3600.0
_DEFAULT_RETRY = RetryPolicy()
_SETTINGS_ALIASES = {field.alias for field in Settings.model_fields.values()}


CatchUp = Literal["latest", "all", "none"]
"""What becomes of the ticks of a cron binding that no instance could store while the database
was away, once it is back: `latest` (default) one run for the missed window, naming the ticks it
stands for; `all` one run per missed tick (the newest 100 at most); `none` a skip recorded as
a cancelled run."""
CATCH_UP_POLICIES: tuple[CatchUp, ...] = ("latest", "all", "none")


class CommonOptions(TypedDict, total=False):
    """What every kind of job takes: its name (default: the function's), and its retries."""

    name: str | None
    max_attempts: int  # default: RetryPolicy's
    retry_base_seconds: float  # the first retry's delay ceiling; doubles each attempt
    timeout_seconds: float  # an attempt (a data processor: a chunk) that runs longer fails
    transactional: bool  # ctx.db writes commit with the run, once (app/dispatch/transactions.py)
    # Limits across all instances (app/workers/flow_control.py); a run held back waits pending.
    max_running: int  # at most this many runs at once (per `concurrency_key` value, if given)
    concurrency_key: str  # a payload field: the limits hold per value of it (per tenant)
    rate_limit: str  # at most this many starts per period: "100/min", "5/s", "10/30s"


class TopicOptions(CommonOptions, total=False):
    pubsub: str | None  # the Dapr pub/sub component of the topic; default Dapr:PubSubName
    # daprd delivers the topic's events in bulk, one request per batch (app/api/delivery.py):
    # cheaper per event, and every event of a delivery waits for the slowest first attempt.
    bulk: bool


class ManualOptions(CommonOptions, total=False):
    overlap: Overlap  # a schedule's firing while the previous run still runs: see `Overlap`


class BindingOptions(CommonOptions, total=False):
    binding: str | None  # a Dapr cron input binding that fires the job (needs `cron=`)
    catch_up: CatchUp  # the ticks no instance could store (the database away): see `CatchUp`
    overlap: Overlap  # a tick while the previous run still runs: see `Overlap`


class FlowOptions(BindingOptions, total=False):
    topic: str | None  # a topic whose CloudEvents start the workflow (their data: its payload)
    pubsub: str | None  # the Dapr pub/sub component of the topic; default Dapr:PubSubName


class ChunkOptions(BindingOptions, total=False):
    cron: str | None
    chunk_size: int  # default 500: what `ctx.chunk_size` tells the handler


ForContext = Callable[[ContextHandler], ContextHandler]
ForPayload = Callable[[PayloadHandler[PayloadT]], PayloadHandler[PayloadT]]
ForBatch = Callable[[BatchHandler[PayloadT]], BatchHandler[PayloadT]]
ForFlow = Callable[[FlowFunction], FlowFunction]
ForPayloadFlow = Callable[[PayloadFlowFunction[PayloadT]], PayloadFlowFunction[PayloadT]]


class RegistrationError(StartRefused):
    """A job cannot be registered as written; the message says how to fix it."""


@dataclass(frozen=True)
class Job:
    name: str
    kind: JobKind
    handler: Handler
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    payload_model: type[BaseModel] | None = None
    topic: str | None = None
    pubsub: str | None = None
    """The Dapr pub/sub component of `topic`; None: the app's, `Dapr:PubSubName`."""
    binding: str | None = None
    schedule: Schedule | None = None
    concurrency: int | None = None
    chunk_size: int | None = None
    ordered_by: str | None = None
    batch_size: int | None = None  # a batch handler: at most this many items per call
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    description: str = ""
    origin: Callable[..., Any] | None = None
    """An activity: the function as written (`handler` wraps it), by which a step names it."""
    transactional: bool = False
    """Each attempt's `ctx.db` writes commit in one MongoDB transaction, once per run."""
    catch_up: CatchUp = "latest"
    max_running: int | None = None
    concurrency_key: str | None = None
    rate_limit: RateLimit | None = None
    overlap: Overlap = "allow"
    bulk: bool = False
    """daprd delivers the topic's events in batches, one request each (bulk subscribe)."""

    @property
    def limits(self) -> FlowLimits:
        """What its flow gates let through; an overlap policy other than `allow` is one run
        at a time."""
        one_at_a_time = 1 if self.overlap != "allow" else None
        return FlowLimits(max_running=self.max_running or one_at_a_time, rate=self.rate_limit)

    @cached_property
    def gated(self) -> bool:
        """Its runs ask a FlowGate actor before they start."""
        return self.limits.any

    def gate_of(self, payload: Any) -> str:
        """The gate a run with this (stored) payload passes: the job's, or its key value's."""
        if self.concurrency_key is None:
            return self.name
        value = payload.get(self.concurrency_key) if isinstance(payload, dict) else None
        return f"{self.name}|{value}"

    @property
    def trigger(self) -> str | None:
        """What fires it, as the operator API shows it: its cron expression, topic or binding."""
        if self.schedule is not None:
            return self.schedule.expression
        return self.topic or self.binding

    @property
    def max_attempts(self) -> int:
        return self.retry.max_attempts

    def pubsub_or(self, default: str) -> str | None:
        """The pub/sub component this job subscribes through (None: it subscribes to none)."""
        if self.topic is None:
            return None
        return self.pubsub or default


class Registry:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._sections: dict[type[BaseModel], str] = {}

    def __iter__(self) -> Iterator[Job]:
        return iter(self._jobs.values())

    def __len__(self) -> int:
        return len(self._jobs)

    def get(self, name: str) -> Job | None:
        return self._jobs.get(name)

    def by_topic(self, pubsub: str, topic: str, *, default_pubsub: str) -> Job | None:
        return next(
            (
                w
                for w in self._jobs.values()
                if w.topic == topic and w.pubsub_or(default_pubsub) == pubsub
            ),
            None,
        )

    def section(self, name: str) -> Callable[[type[SectionT]], type[SectionT]]:
        """Declares a worker module's own settings: the pydantic model it decorates is read from
        section `name` of appsettings.json and the environment (`<name>__<Key>`) at start-up,
        where a refused value stops the app, and handlers get it with `ctx.section(Model)`."""

        def declare(model: type[SectionT]) -> type[SectionT]:
            if name in Settings.model_fields or name in _SETTINGS_ALIASES:
                raise RegistrationError(
                    f"settings section {name!r} ({model.__qualname__}) is one of the app's own"
                )
            if name in self._sections.values():
                raise RegistrationError(f"settings section {name!r} is declared twice")
            self._sections[model] = name
            return model

        return declare

    def sections(self) -> dict[type[BaseModel], str]:
        """The declared settings sections: model -> section name."""
        return dict(self._sections)

    def by_handler(self, handler: Callable[..., Any]) -> Job | None:
        """The job a decorated function was registered as (a workflow's step names it so)."""
        return next((w for w in self._jobs.values() if handler in (w.handler, w.origin)), None)

    def by_binding(self, binding: str) -> Job | None:
        return next((w for w in self._jobs.values() if w.binding == binding), None)

    def add(self, job: Job) -> None:
        where = f"job {job.name!r} ({job.handler.__module__}.{job.handler.__qualname__})"
        if job.kind == "workflow":
            if not inspect.isgeneratorfunction(job.handler):
                raise RegistrationError(
                    f"{where}: a workflow is a plain `def` that yields its steps "
                    "(`result = yield flow.step(...)`), not an `async def`"
                )
        elif not inspect.iscoroutinefunction(job.handler):
            raise RegistrationError(f"{where}: the handler must be an `async def`")
        _check_parameters(job, where)
        if job.name in self._jobs:
            raise RegistrationError(
                f"{where} is registered twice; give one of them another `name=`"
            )
        if job.topic and any(w.topic == job.topic and w.pubsub == job.pubsub for w in self):
            raise RegistrationError(f"{where}: topic {job.topic!r} already has a handler")
        if job.binding and self.by_binding(job.binding):
            raise RegistrationError(f"{where}: binding {job.binding!r} already has a job")
        _check_options(job, where)
        self._jobs[job.name] = job

    def _register(self, **spec: Any) -> Callable[[Any], Any]:
        def register(handler: Any) -> Any:
            options = dict(spec)
            name = options.pop("name", None) or handler.__name__
            max_attempts = options.pop("max_attempts", _DEFAULT_RETRY.max_attempts)
            retry_base_seconds = options.pop("retry_base_seconds", _DEFAULT_RETRY.base_seconds)
            try:
                retry = RetryPolicy(max_attempts=max_attempts, base_seconds=retry_base_seconds)
            except ValueError as exc:
                raise RegistrationError(f"job {name!r}: {exc}") from exc
            cron = options.pop("cron", None)
            rate_limit = options.pop("rate_limit", None)
            try:
                options["rate_limit"] = RateLimit.parse(rate_limit) if rate_limit else None
            except InvalidRateLimit as exc:
                raise RegistrationError(f"job {name!r}: {exc}") from exc
            schedule = _schedule(cron, name) if cron else None
            description = (inspect.getdoc(handler) or "").split("\n\n")[0]
            self.add(
                Job(
                    name=name,
                    handler=handler,
                    retry=retry,
                    schedule=schedule,
                    description=description,
                    **options,
                )
            )
            return handler

        return register

    @overload
    def scheduled(
        self, *, cron: str, payload: None = None, **options: Unpack[BindingOptions]
    ) -> ForContext: ...
    @overload
    def scheduled(
        self, *, cron: str, payload: type[PayloadT], **options: Unpack[BindingOptions]
    ) -> ForPayload[PayloadT]: ...
    def scheduled(
        self, *, cron: str, payload: type[BaseModel] | None = None, **options: Any
    ) -> Callable[[Handler], Handler]:
        """A scheduled job. `cron` is its schedule; a Dapr cron input binding named `binding`
        fires it (`make components` writes that component from this decorator). Without a
        binding it runs from a Jobs API schedule or a manual trigger."""
        return self._register(kind="scheduled", cron=cron, payload_model=payload, **options)

    @overload
    def manual(self, *, payload: None = None, **options: Unpack[ManualOptions]) -> ForContext: ...
    @overload
    def manual(
        self, *, payload: type[PayloadT], **options: Unpack[ManualOptions]
    ) -> ForPayload[PayloadT]: ...
    def manual(
        self, *, payload: type[BaseModel] | None = None, **options: Any
    ) -> Callable[[Handler], Handler]:
        """A job with no trigger of its own: it runs when an operator triggers it (the API, the
        dashboard) or a Jobs API schedule made at run time names it."""
        return self._register(kind="manual", payload_model=payload, **options)

    def event_handler(
        self,
        *,
        topic: str,
        payload: type[PayloadT],
        ordered_by: str | None = None,
        **options: Unpack[TopicOptions],
    ) -> ForPayload[PayloadT]:
        """A handler of the CloudEvents on `topic` (of `pubsub`, default `Dapr:PubSubName`);
        each event's data is validated as `payload`. A redelivered event (same CloudEvent id)
        is not applied twice. With `ordered_by` (a payload field), the events of one value of
        that field run one at a time across all instances."""
        register = self._register(
            kind="event", topic=topic, payload_model=payload, ordered_by=ordered_by, **options
        )
        return cast(ForPayload[PayloadT], register)

    def batch_handler(
        self,
        *,
        topic: str,
        payload: type[PayloadT],
        max_batch: int = 100,
        **options: Unpack[TopicOptions],
    ) -> ForBatch[PayloadT]:
        """A handler of the CloudEvents on `topic` that takes them in batches: it is called
        with a list of validated payloads (the events that arrive while its previous call runs,
        up to `max_batch`) and a `BatchContext`, and returns None or one result per item. Each
        event is still a run of its own, retried and dead-lettered on its own; a call that
        raises fails every run of its batch. For high-volume topics whose items can be written
        with one bulk call. Its topic is bulk-subscribed unless `bulk=False`: daprd then sends
        the events a batch at a time, and the batch is what the handler gets."""
        options.setdefault("bulk", True)
        register = self._register(
            kind="event", topic=topic, payload_model=payload, batch_size=max_batch, **options
        )
        return cast(ForBatch[PayloadT], register)

    def queue_processor(
        self,
        *,
        topic: str,
        payload: type[PayloadT],
        concurrency: int = 4,
        **options: Unpack[TopicOptions],
    ) -> ForPayload[PayloadT]:
        """Competing consumers on a work-queue topic: each message goes to one instance, and at
        most `concurrency` messages are processed at once per instance."""
        register = self._register(
            kind="queue", topic=topic, payload_model=payload, concurrency=concurrency, **options
        )
        return cast(ForPayload[PayloadT], register)

    @overload
    def data_processor(
        self, *, payload: None = None, **options: Unpack[ChunkOptions]
    ) -> ForContext: ...
    @overload
    def data_processor(
        self, *, payload: type[PayloadT], **options: Unpack[ChunkOptions]
    ) -> ForPayload[PayloadT]: ...
    def data_processor(
        self, *, payload: type[BaseModel] | None = None, **options: Any
    ) -> Callable[[Handler], Handler]:
        """A long run over a large data set in chunks. The handler reports each chunk with
        `ctx.chunk_done(...)`, which saves progress and a checkpoint, and stops the run there
        when an operator cancelled it. A run whose instance died resumes from its checkpoint."""
        options.setdefault("chunk_size", 500)
        return self._register(kind="data", payload_model=payload, **options)

    @overload
    def integration(
        self, *, cron: str | None = None, payload: None = None, **options: Unpack[BindingOptions]
    ) -> ForContext: ...
    @overload
    def integration(
        self, *, cron: str | None = None, payload: type[PayloadT], **options: Unpack[BindingOptions]
    ) -> ForPayload[PayloadT]: ...
    def integration(
        self, *, cron: str | None = None, payload: type[BaseModel] | None = None, **options: Any
    ) -> Callable[[Handler], Handler]:
        """A task that syncs with an external system through `ctx.http` (timeouts, retries with
        backoff and jitter) and keeps its sync position with `ctx.positions`."""
        return self._register(kind="integration", cron=cron, payload_model=payload, **options)

    @overload
    def workflow(
        self, *, cron: str | None = None, payload: None = None, **options: Unpack[BindingOptions]
    ) -> ForFlow: ...
    @overload
    def workflow(
        self, *, cron: str | None = None, payload: type[PayloadT], **options: Unpack[FlowOptions]
    ) -> ForPayloadFlow[PayloadT]: ...
    def workflow(
        self, *, cron: str | None = None, payload: type[BaseModel] | None = None, **options: Any
    ) -> Callable[[Any], Any]:
        """A workflow on Dapr Workflow: a `def` that yields its steps through `Flow` (other
        jobs run as steps, in turn or fanned out, durable timers, waits for external events)
        and returns its result. Its run lasts as long as the workflow instance; each step is a
        run of its own (`parent_run_id`), retried as its job is. Triggered as other jobs are:
        the API and the dashboard, a cron binding, a Jobs API schedule, or (with `topic` and a
        payload) each CloudEvent on a topic, acknowledged once its run is stored."""
        if options.get("topic") and payload is None:
            raise RegistrationError(
                f"workflow {options.get('name')!r}: a topic needs payload=: an event's data is it"
            )
        options.setdefault("timeout_seconds", WORKFLOW_TIMEOUT_SECONDS)
        return self._register(kind="workflow", cron=cron, payload_model=payload, **options)

    def activity(
        self, **options: Unpack[CommonOptions]
    ) -> Callable[[ActivityFunction[PayloadT]], ActivityFunction[PayloadT]]:
        """A plain step of workflows: `async def step(item: Model) -> result`, without a job
        context; its payload model is its one parameter's annotation. Each call from a
        workflow is still a run of its own (a child of the workflow's run, retried as
        `max_attempts` says); the job, of kind `manual`, can be triggered on its own too."""

        def register(function: ActivityFunction[PayloadT]) -> ActivityFunction[PayloadT]:
            model = _payload_parameter(function)

            async def run_activity(item: BaseModel, ctx: JobContext) -> object:
                return await function(item)  # type: ignore[arg-type]

            for attribute in ("__name__", "__qualname__", "__module__", "__doc__"):
                setattr(run_activity, attribute, getattr(function, attribute))
            self._register(kind="manual", payload_model=model, origin=function, **options)(
                run_activity
            )
            return function

        return register

    def fan_out(
        self,
        *,
        payload: type[PayloadT],
        chunk: PayloadHandler[ChunkT],
        cron: str | None = None,
        **options: Unpack[BindingOptions],
    ) -> Callable[[PlanHandler[PayloadT, ChunkT]], PlanHandler[PayloadT, ChunkT]]:
        """The data processor's fan-out form: the decorated function plans the work (it
        returns the chunks, each a payload of `chunk`, a job registered before it); each chunk
        runs as a step of a workflow, spread over the instances, and the run's result is
        `{"chunks": n, "results": [...]}` in plan order once all are done. The job (kind
        `workflow`) is triggered as a workflow is; its plan is the job `<name>.plan`."""

        def register(plan: PlanHandler[PayloadT, ChunkT]) -> PlanHandler[PayloadT, ChunkT]:
            name = options.get("name") or plan.__name__
            chunk_job = self.by_handler(chunk)
            if chunk_job is None or chunk_job.payload_model is None:
                raise RegistrationError(
                    f"fan-out {name!r}: `chunk` must be a job registered (with payload=) before it"
                )
            planned = planning_step(plan)
            plan_options = {k: v for k, v in options.items() if k in _RETRY_OPTIONS}
            self._register(
                kind="manual", payload_model=payload, **{**plan_options, "name": f"{name}.plan"}
            )(planned)
            workflow = fanned_out(planned, chunk, chunk_job.payload_model)
            workflow.__name__ = name
            workflow.__doc__ = plan.__doc__
            self._register(
                kind="workflow",
                cron=cron,
                payload_model=payload,
                **{"timeout_seconds": WORKFLOW_TIMEOUT_SECONDS, **options, "name": name},
            )(workflow)
            return plan

        return register


_RETRY_OPTIONS = ("max_attempts", "retry_base_seconds")


def _payload_parameter(function: Callable[..., Any]) -> type[BaseModel]:
    """The payload model of an activity: the annotation of its one parameter."""
    where = f"activity {getattr(function, '__qualname__', function)!r}"
    if not inspect.iscoroutinefunction(function):
        raise RegistrationError(f"{where} must be an `async def`")
    parameters = list(inspect.signature(function).parameters)
    model = get_type_hints(function).get(parameters[0]) if len(parameters) == 1 else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise RegistrationError(
            f"{where} must take one parameter annotated with its payload model "
            "(`async def step(item: Model) -> ...`)"
        )
    return model


def _check_options(job: Job, where: str) -> None:
    """The options of one job that cannot go together, or out of their range."""
    if job.catch_up not in CATCH_UP_POLICIES:
        raise RegistrationError(
            f"{where}: catch_up={job.catch_up!r} is none of {', '.join(CATCH_UP_POLICIES)}"
        )
    _check_flow_control(job, where)
    if job.concurrency is not None and job.concurrency < 1:
        raise RegistrationError(f"{where}: concurrency must be at least 1")
    if job.timeout_seconds <= 0:
        raise RegistrationError(f"{where}: timeout_seconds must be positive")
    if job.binding is not None and job.schedule is None:
        raise RegistrationError(
            f"{where}: binding {job.binding!r} needs `cron=` too: every instance's binding "
            "fires, and only the schedule's tick makes those firings one run"
        )
    if job.transactional and (job.kind in ("workflow", "data") or job.batch_size):
        raise RegistrationError(
            f"{where}: transactional=True is for a handler that runs once per run; a "
            f"{'batch handler' if job.batch_size else job.kind} cannot hold its writes "
            "in one transaction"
        )
    if job.batch_size is not None and job.batch_size < 1:
        raise RegistrationError(f"{where}: max_batch must be at least 1")
    if job.chunk_size is not None and job.chunk_size < 1:
        raise RegistrationError(f"{where}: chunk_size must be at least 1")
    if job.ordered_by is not None and (
        job.payload_model is None or job.ordered_by not in job.payload_model.model_fields
    ):
        raise RegistrationError(
            f"{where}: ordered_by={job.ordered_by!r} must name a field of its payload model"
        )


def _check_parameters(job: Job, where: str) -> None:
    """For code mypy does not check: the handler must take what the executor will pass."""
    second = "flow: Flow" if job.kind == "workflow" else "ctx: JobContext"
    if job.batch_size is not None:
        expected = "(items: list[Payload], ctx: BatchContext)"
    elif job.payload_model is not None:
        expected = f"(item: {job.payload_model.__name__}, {second})"
    else:
        expected = f"({second})"
    arguments = expected.count(",") + 1
    try:
        inspect.signature(job.handler).bind(*([None] * arguments))
    except TypeError as exc:
        raise RegistrationError(
            f"{where}: the handler must take {expected}, as registered"
            f"{' with payload=' + job.payload_model.__name__ if job.payload_model else ''}"
            f" ({exc})"
        ) from exc


def _schedule(expression: str, name: str) -> Schedule:
    try:
        return Schedule.parse(expression)
    except InvalidSchedule as exc:
        raise RegistrationError(f"job {name!r}: {exc}") from exc


registry = Registry()
"""The registry the built-in jobs (`app.workers.builtin`) and any worker module register in."""


def _check_flow_control(job: Job, where: str) -> None:
    if job.overlap not in OVERLAP_POLICIES:
        raise RegistrationError(
            f"{where}: overlap={job.overlap!r} is none of {', '.join(OVERLAP_POLICIES)}"
        )
    if job.overlap != "allow" and job.topic is not None:
        raise RegistrationError(
            f"{where}: overlap={job.overlap!r} is for jobs that ticks or schedules fire, not "
            "events: use max_running= to limit how many run at once"
        )
    if job.max_running is not None and job.max_running < 1:
        raise RegistrationError(f"{where}: max_running must be at least 1")
    if job.concurrency_key is not None:
        if job.payload_model is None or job.concurrency_key not in job.payload_model.model_fields:
            raise RegistrationError(
                f"{where}: concurrency_key={job.concurrency_key!r} must name a field of its "
                "payload model"
            )
        if job.max_running is None and job.rate_limit is None:
            raise RegistrationError(
                f"{where}: concurrency_key needs max_running= or rate_limit=: the limit per key"
            )
    if job.gated and (job.batch_size is not None or job.ordered_by is not None):
        raise RegistrationError(
            f"{where}: max_running, rate_limit and overlap cannot go with "
            f"{'a batch handler' if job.batch_size else 'ordered_by'}: its runs start together "
            "or in their key's order, not one by one through a gate"
        )
