"""The app's side of Dapr Workflow: the workflow runtime (the SDK's worker, which holds a gRPC
stream to the sidecar and runs workflow code and activities on threads of its own), the one
activity that runs a step, and the drive of a workflow run.

A workflow job's run is an ordinary run whose attempt starts the workflow instance (its id is
the run's) and waits for its end, holding the run's lease meanwhile; if the instance that
drives it dies, another attempt takes the instance up where it is. Each step is a child run
(`parent_run_id`), stored once per step of the instance: Dapr runs an activity again when the
app died during it, and that second call finds the step's run, whose job is idempotent per run
as every job is, instead of making another.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import grpc
from dapr.ext.workflow import DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime
from dapr.ext.workflow import WorkflowStatus as Status
from dapr.ext.workflow._durabletask.internal.orchestrator_service_pb2 import (
    GetInstanceHistoryRequest,
    RerunWorkflowFromEventRequest,
)
from dapr.ext.workflow._durabletask.internal.orchestrator_service_pb2_grpc import (
    TaskHubSidecarServiceStub,
)
from dapr.ext.workflow.aio import DaprWorkflowClient
from dapr.ext.workflow.logger import LoggerOptions
from grpc import StatusCode
from grpc.aio import AioRpcError
from loguru import logger
from pydantic import BaseModel
from tenacity import AsyncRetrying, retry_if_exception, wait_exponential

from app.core.clock import utc_now
from app.core.config import Settings
from app.core.errors import Refused
from app.dispatch.dispatcher import Dispatcher
from app.dispatch.workflow_driver import InstanceView
from app.models.runs import JobRun, RunStatus
from app.repositories.runs import RunRepository
from app.workers.errors import GiveUp, RunCancelled
from app.workers.flow import STEP_ACTIVITY, Flow, Steps
from app.workers.registry import Job, Registry

# How long one wait for the instance's end lasts before it is asked again (a long poll), and
# so how often a stall is looked for.
_WAIT_SECONDS = 10
# While the sidecar is away, the drive asks again after this long at most.
_SIDECAR_WAIT_CEILING = 5.0
_SIDECAR_AWAY = {StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED, StatusCode.UNKNOWN}
_SDK_LOGGERS = ("WorkflowRuntime", "DaprWorkflowClient", "durabletask-worker", "durabletask-client")
# An instance whose steps have all ended this long ago and which has not moved since is stalled
# (a live one takes a step's result in within milliseconds; a false alarm costs a reconnect).
_STALL_SECONDS = 20
OPERATOR_VERB_SECONDS = 10.0
"""How long an operator's verb on an instance (raise an event, suspend, purge...) waits for the
sidecar's workflow API: a sidecar placing the workflow actors again holds such calls."""
# A step's run is read again after this long, doubling up to the ceiling, until it has ended.
_STEP_POLL_FIRST, _STEP_POLL_CEILING = 0.05, 1.0


class InstanceRefused(Refused):
    """The sidecar's workflow API refused an operator's verb on an instance (one it does not
    know yet, or in a state the verb does not apply to)."""

    status_code = 409


class WorkflowApiAway(Refused):
    """The sidecar's workflow API did not answer an operator's verb."""

    status_code = 503


class StepEnded(GiveUp):
    """A step's run ended without success (dead or cancelled): the workflow sees it fail."""


class WorkflowHost:
    def __init__(self, *, registry: Registry, settings: Settings, runs: RunRepository) -> None:
        self._address = settings.dapr.host, str(settings.dapr.grpc_port)
        self._api_token = settings.dapr.api_token
        self._registry = registry
        self._runs = runs
        self._runtime = self._new_runtime()
        host, port = self._address
        self._client = DaprWorkflowClient(host=host, port=port, logger_options=_through_ours())
        self._dispatcher: Dispatcher | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reconnecting = asyncio.Lock()
        self._reconnected_at = float("-inf")

    def _new_runtime(self) -> WorkflowRuntime:
        host, port = self._address
        runtime = WorkflowRuntime(host=host, port=port, logger_options=_through_ours())
        for job in self._registry:
            if job.kind == "workflow":
                runtime.register_workflow(self._orchestrator(job), name=job.name)

        # A function of this runtime's own: the SDK marks a registered function as registered,
        # and a bound method's function is shared by every host of the process.
        async def step(context: WorkflowActivityContext, data: dict[str, Any]) -> Any:
            return await self._step(context, data)

        runtime.register_activity(step, name=STEP_ACTIVITY)
        return runtime

    @staticmethod
    def needed(registry: Registry) -> bool:
        return any(job.kind == "workflow" for job in registry)

    async def start(self, dispatcher: Dispatcher) -> None:
        """Connects the workflow worker to the sidecar; steps go to `dispatcher` from now on."""
        self._dispatcher = dispatcher
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._runtime.start)

    async def stop(self) -> None:
        await asyncio.to_thread(self._runtime.shutdown)

    # -- the workflow run (the engine's WorkflowDriver) ------------------------------------

    async def drive(self, job: Job, run: JobRun, payload: BaseModel | None) -> Any:
        """While the sidecar is away (restarted, say), the run waits for it: the instance lives
        on in the sidecar's state, and the run's lease is kept meanwhile."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(_sidecar_away),
            wait=wait_exponential(multiplier=0.2, max=_SIDECAR_WAIT_CEILING),
            before_sleep=lambda _: logger.bind(run_id=run.id).warning(
                "the sidecar's workflow API does not answer: waiting for it"
            ),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._drive_once(job, run, payload)
        raise AssertionError("unreachable: the retrying loop returns or raises")

    async def _drive_once(self, job: Job, run: JobRun, payload: BaseModel | None) -> Any:
        log = logger.bind(job=job.name, run_id=run.id)
        data = payload.model_dump(mode="json") if payload is not None else run.payload
        if await self._client.get_workflow_state(run.id, fetch_payloads=False) is None:
            await self._client.schedule_new_workflow(job.name, input=data, instance_id=run.id)
            log.info("workflow instance started")
        else:
            log.info("workflow instance exists: waiting for it")
        while True:
            try:
                state = await self._client.wait_for_workflow_completion(
                    run.id, fetch_payloads=True, timeout_in_seconds=_WAIT_SECONDS
                )
            except TimeoutError:
                if await self._stalled(run.id):
                    await self._reconnect(run.id)
                continue
            if state is None:
                raise GiveUp(f"workflow instance {run.id} is gone (purged?)")
            return _outcome(state)

    async def _stalled(self, run_id: str) -> bool:
        """The instance runs, every step it called has ended, the last of them a while ago,
        and the instance has not moved since: it never took those steps' results in. That is
        what a sidecar SIGKILLed while steps ran leaves: the restarted one ignores their
        results ("unknown instance ID/task ID combo", dapr/dapr #9641) and its placement of
        the workflow actors times out ("dissemination timeout"), so no workflow moves there.
        An instance waiting for a timer or an event moved after its last step, and a step
        still running has not ended: neither is taken for stalled."""
        state = await self._client.get_workflow_state(run_id, fetch_payloads=False)
        if state is None or state.runtime_status is not Status.RUNNING:
            return False
        moved_at: datetime = state.last_updated_at  # the SDK's: naive, in UTC
        return instance_stalled(
            moved_at=moved_at.replace(tzinfo=moved_at.tzinfo or UTC),
            steps_settled_at=await self._runs.steps_settled_at(run_id),
            now=utc_now(),
        )

    async def _reconnect(self, run_id: str) -> None:
        """Connects the workflow worker to the sidecar anew: the sidecar registers the
        workflow actors again when a worker connects, and places them this time; the stalled
        instances then get their steps' results again (each step's run is found, not run
        again). Measured: the instance completes about a second after. Once for every run
        that found itself stalled at the same time."""
        async with self._reconnecting:
            if time.monotonic() - self._reconnected_at < _STALL_SECONDS:
                return
            logger.bind(run_id=run_id).warning(
                "workflow instance stalled (its steps ended, it never moved on): connecting the"
                " workflow worker to the sidecar anew"
            )
            await asyncio.to_thread(self._runtime.shutdown)
            self._runtime = self._new_runtime()
            await asyncio.to_thread(self._runtime.start)
            self._reconnected_at = time.monotonic()

    async def terminate(self, run_id: str) -> None:
        async with _refusals(run_id, "terminate"):
            await self._client.terminate_workflow(run_id)

    async def raise_event(self, run_id: str, name: str, data: Any) -> None:
        async with _refusals(run_id, f"raise event {name!r} on"):
            await self._client.raise_workflow_event(run_id, name, data=data)

    async def suspend(self, run_id: str) -> None:
        async with _refusals(run_id, "suspend"):
            await self._client.pause_workflow(run_id)

    async def resume(self, run_id: str) -> None:
        async with _refusals(run_id, "resume"):
            await self._client.resume_workflow(run_id)

    async def rerun_from_failed_step(self, run_id: str, new_instance_id: str) -> str:
        """Through the sidecar's workflow API itself (`RerunWorkflowFromEvent`, Dapr 1.18),
        which the SDK's client does not offer: from the `TaskScheduled` event of the run's last
        failed step."""
        host, port = self._address
        token = self._api_token
        metadata = (("dapr-api-token", token),) if token else ()
        async with (
            _refusals(run_id, "re-run from its failed step"),
            grpc.aio.insecure_channel(f"{host}:{port}") as channel,
        ):
            api = TaskHubSidecarServiceStub(channel)  # type: ignore[no-untyped-call]  # generated
            history = await api.GetInstanceHistory(
                GetInstanceHistoryRequest(instanceId=run_id), metadata=metadata
            )
            events = history.events
            scheduled = {e.eventId: e.taskScheduled for e in events if e.HasField("taskScheduled")}
            failed = [e.taskFailed.taskScheduledId for e in events if e.HasField("taskFailed")]
            if not failed or failed[-1] not in scheduled:
                raise InstanceRefused(
                    f"workflow instance {run_id} has no failed step to re-run from (the "
                    "workflow's own code failed): re-run it from the start (retry)"
                )
            rerun = RerunWorkflowFromEventRequest(
                sourceInstanceID=run_id, eventID=failed[-1], newInstanceID=new_instance_id
            )
            await api.RerunWorkflowFromEvent(rerun, metadata=metadata)
        step = _json(scheduled[failed[-1]].input.value)
        return str(step.get("step") or step.get("job")) if isinstance(step, dict) else "?"

    async def describe(self, run_id: str) -> InstanceView | None:
        async with _refusals(run_id, "read"):
            state = await self._client.get_workflow_state(run_id, fetch_payloads=True)
        if state is None:
            return None
        custom = state.serialized_custom_status
        updated: datetime = state.last_updated_at  # the SDK's: naive, in UTC
        return InstanceView(
            status=state.runtime_status.name,
            waiting_on=str(_json(custom) or "") or None if custom else None,
            updated_at=updated.replace(tzinfo=updated.tzinfo or UTC),
        )

    async def purge(self, run_id: str) -> None:
        async with _refusals(run_id, "purge"):
            await self._client.purge_workflow(run_id)

    # -- inside the workflow runtime's threads --------------------------------------------

    def _orchestrator(self, job: Job) -> Any:
        registry, model = self._registry, job.payload_model
        workflow = cast(Callable[..., Steps], job.handler)  # a generator function, registered

        def orchestrate(context: DaprWorkflowContext, data: Any = None) -> Steps:
            flow = Flow(context, registry.by_handler)
            if model is None:
                return workflow(flow)
            return workflow(model.model_validate({} if data is None else data), flow)

        orchestrate.__name__ = job.name
        return orchestrate

    async def _step(self, context: WorkflowActivityContext, step: dict[str, Any]) -> Any:
        """The step activity, on the runtime's event loop: the step's run is made and awaited
        on the app's loop, where the database client and the engine live."""
        assert self._loop is not None, "steps arrive only after start()"
        running = self._run_step(context.workflow_id, context.task_id, step)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(running, self._loop))

    async def _run_step(self, instance_id: str, task_id: int, step: dict[str, Any]) -> Any:
        assert self._dispatcher is not None
        job = self._dispatcher.job(str(step["job"]))
        run = await self._dispatcher.submit_step(
            job,
            step.get("payload"),
            parent_run_id=instance_id,
            step=str(step.get("step") or job.name),
            key=f"{instance_id}:{task_id}",
        )
        pause = _STEP_POLL_FIRST
        while True:
            # An attempt here is awaited; one elsewhere (or a retry to come) is polled for.
            await self._dispatcher.attempt_ended(run.id)
            current = await self._runs.get(run.id)
            if current is not None and current.status is RunStatus.SUCCEEDED:
                return current.result
            if current is not None and current.status in (RunStatus.DEAD, RunStatus.CANCELLED):
                error = current.error
                reason = f"{error.type}: {error.message}" if error else current.status.value
                raise StepEnded(
                    f"step {current.step!r} (run {current.id}) {current.status}: {reason}"
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, _STEP_POLL_CEILING)


def _through_ours() -> LoggerOptions:
    """The SDK's loggers without handlers of their own: their records reach the app's logging
    (JSON lines in production) like every library's. Its INFO lines (a line per wait for an
    instance, per registration) are left out."""
    for name in _SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return LoggerOptions(log_level="WARNING", log_handler=logging.NullHandler())


def instance_stalled(
    *, moved_at: datetime, steps_settled_at: datetime | None, now: datetime
) -> bool:
    """A running instance is stalled when every step it called has ended (`steps_settled_at`:
    when the last one did; None while one runs, or before its first), over `_STALL_SECONDS`
    ago, and it has not moved since."""
    if steps_settled_at is None or now - steps_settled_at < timedelta(seconds=_STALL_SECONDS):
        return False
    return moved_at < steps_settled_at


@contextlib.asynccontextmanager
async def _refusals(run_id: str, verb: str) -> AsyncIterator[None]:
    """The sidecar's gRPC errors, as refusals an operator reads; a verb the sidecar does not
    answer within `OPERATOR_VERB_SECONDS` is one too (the operator's request must not hang)."""
    try:
        async with asyncio.timeout(OPERATOR_VERB_SECONDS):
            yield
    except TimeoutError as exc:
        raise WorkflowApiAway(
            f"the sidecar's workflow API did not answer within {OPERATOR_VERB_SECONDS:.0f} s to "
            f"{verb} instance {run_id} (after a restart it may still be placing the workflow "
            "actors): try again"
        ) from exc
    except AioRpcError as exc:
        why = f"the sidecar's workflow API could not {verb} instance {run_id}: {exc.details()}"
        if _sidecar_away(exc):
            raise WorkflowApiAway(why) from exc
        raise InstanceRefused(why) from exc


def _sidecar_away(exc: BaseException) -> bool:
    return isinstance(exc, AioRpcError) and exc.code() in _SIDECAR_AWAY


def _outcome(state: Any) -> Any:
    status = state.runtime_status
    if status is Status.COMPLETED:
        output = state.serialized_output
        return {"output": _json(output)} if output else None
    if status is Status.TERMINATED:
        raise RunCancelled(f"workflow instance {state.instance_id} was terminated")
    details = state.failure_details
    message = f"{details.error_type}: {details.message}" if details else str(status)
    raise GiveUp(f"workflow failed: {message}")


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
