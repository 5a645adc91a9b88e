from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from app.core.config import Settings
from app.main import create_app
from app.workers import BatchContext, Flow, JobContext, RegistrationError, Steps
from app.workers.registry import Registry
from tests.support import DEVELOPMENT


class Payload(BaseModel):
    value: int


def test_workers_are_found_by_name_topic_and_binding() -> None:
    registry = Registry()

    @registry.event_handler(topic="orders", payload=Payload)
    async def on_order(event: Payload, ctx: JobContext) -> None:
        return None

    @registry.scheduled(cron="@every 1m", binding="nightly-cron", name="nightly")
    async def nightly(ctx: JobContext) -> dict[str, Any]:
        return {}

    assert registry.get("on_order") is not None
    assert registry.by_topic("pubsub", "orders", default_pubsub="pubsub") is registry.get(
        "on_order"
    )
    assert registry.by_binding("nightly-cron") is registry.get("nightly")
    assert registry.by_topic("pubsub", "other", default_pubsub="pubsub") is None
    assert {w.kind for w in registry} == {"event", "scheduled"}


def test_a_batch_handlers_topic_is_bulk_subscribed_unless_it_says_otherwise() -> None:
    registry = Registry()

    @registry.batch_handler(topic="views", payload=Payload)
    async def views(items: list[Payload], ctx: BatchContext) -> None:
        return None

    @registry.batch_handler(topic="clicks", payload=Payload, bulk=False)
    async def clicks(items: list[Payload], ctx: BatchContext) -> None:
        return None

    @registry.queue_processor(topic="orders", payload=Payload, bulk=True)
    async def orders(item: Payload, ctx: JobContext) -> None:
        return None

    @registry.event_handler(topic="events", payload=Payload)
    async def events(item: Payload, ctx: JobContext) -> None:
        return None

    bulk = {job.name: job.bulk for job in registry}
    assert bulk == {"views": True, "clicks": False, "orders": True, "events": False}


def test_a_plain_function_is_refused_at_registration() -> None:
    registry = Registry()

    def not_async(ctx: JobContext) -> None:
        return None

    with pytest.raises(RegistrationError, match="must be an `async def`"):
        registry.scheduled(cron="@every 1m", binding="b")(not_async)  # type: ignore[arg-type]


def test_a_duplicate_name_is_refused_with_a_fix() -> None:
    registry = Registry()

    async def job(ctx: JobContext) -> None:
        return None

    registry.scheduled(cron="@every 1m", binding="a", name="job")(job)
    with pytest.raises(RegistrationError, match="registered twice; give one of them another"):
        registry.scheduled(cron="@every 1m", binding="b", name="job")(job)


def test_two_handlers_for_one_topic_are_refused() -> None:
    registry = Registry()

    async def first(event: Payload, ctx: JobContext) -> None:
        return None

    async def second(event: Payload, ctx: JobContext) -> None:
        return None

    registry.event_handler(topic="orders", payload=Payload)(first)
    with pytest.raises(RegistrationError, match="topic 'orders' already has a handler"):
        registry.event_handler(topic="orders", payload=Payload)(second)


def test_a_bad_cron_expression_is_refused_with_examples() -> None:
    registry = Registry()

    async def job(ctx: JobContext) -> None:
        return None

    with pytest.raises(RegistrationError, match=r"job 'job': '61 \* \* \* \*' is not a schedule"):
        registry.scheduled(cron="61 * * * *")(job)


def test_nonsense_limits_are_refused() -> None:
    registry = Registry()

    async def on_item(item: Payload, ctx: JobContext) -> None:
        return None

    with pytest.raises(RegistrationError, match="concurrency must be at least 1"):
        registry.queue_processor(topic="q", payload=Payload, concurrency=0)(on_item)
    with pytest.raises(RegistrationError, match="max_attempts must be at least 1"):
        registry.event_handler(topic="e", payload=Payload, max_attempts=0)(on_item)

    async def on_items(items: list[Payload], ctx: BatchContext) -> None:
        return None

    with pytest.raises(RegistrationError, match="max_batch must be at least 1"):
        registry.batch_handler(topic="b", payload=Payload, max_batch=0)(on_items)


def test_the_app_refuses_a_binding_named_after_one_of_its_routes() -> None:
    registry = Registry()

    async def job(ctx: JobContext) -> None:
        return None

    registry.scheduled(cron="@every 1m", binding="api")(job)
    with pytest.raises(RegistrationError, match="clashes with a route"):
        create_app(Settings(App=DEVELOPMENT), registry)


def test_every_kind_shows_its_trigger() -> None:
    registry = Registry()

    async def handler(ctx: JobContext) -> None:
        return None

    async def on_item(item: Payload, ctx: JobContext) -> None:
        return None

    registry.data_processor(chunk_size=10, name="d")(handler)
    registry.integration(cron="@every 5m", name="i")(handler)
    registry.queue_processor(topic="jobs", payload=Payload, name="q")(on_item)

    assert {w.name: (w.kind, w.trigger) for w in registry} == {
        "d": ("data", None),
        "i": ("integration", "@every 5m"),
        "q": ("queue", "jobs"),
    }


def test_a_binding_without_a_schedule_is_refused_at_registration() -> None:
    registry = Registry()

    with pytest.raises(RegistrationError, match="binding 'sync-cron' needs `cron=`"):

        @registry.integration(binding="sync-cron")
        async def sync(ctx: JobContext) -> None:
            return None


def test_a_timeout_must_be_positive() -> None:
    registry = Registry()

    with pytest.raises(RegistrationError, match="timeout_seconds must be positive"):

        @registry.scheduled(cron="@every 1m", timeout_seconds=0)
        async def instant(ctx: JobContext) -> None:
            return None


def test_a_workflow_is_a_generator_function_registered_with_a_long_timeout() -> None:
    registry = Registry()

    @registry.manual(payload=Payload)
    async def step(item: Payload, ctx: JobContext) -> None:
        return None

    @registry.workflow(payload=Payload, name="flow")
    def flow(item: Payload, flow: Flow) -> Steps:
        yield flow.step(step, item)

    job = registry.get("flow")
    assert job is not None
    assert job.kind == "workflow"
    assert job.timeout_seconds >= 24 * 3600, "a workflow run lasts as long as its instance"
    assert registry.by_handler(step) is registry.get("step")


def test_an_async_workflow_is_refused_with_a_fix() -> None:
    registry = Registry()
    with pytest.raises(RegistrationError, match="plain `def` that yields its steps"):

        @registry.workflow()  # type: ignore[arg-type]  # mypy refuses it too
        async def not_a_workflow(flow: Flow) -> None:
            return None


class Part(BaseModel):
    start: int


def test_a_fan_out_registers_its_plan_and_a_workflow_and_needs_a_registered_chunk() -> None:
    registry = Registry()

    async def not_registered(part: Part, ctx: JobContext) -> None:
        return None

    @registry.manual(payload=Part)
    async def chunk(part: Part, ctx: JobContext) -> None:
        return None

    @registry.fan_out(payload=Payload, chunk=chunk, name="spread", max_attempts=2)
    async def plan(job: Payload, ctx: JobContext) -> list[Part]:
        return [Part(start=n) for n in range(job.value)]

    spread, planned = registry.get("spread"), registry.get("spread.plan")
    assert spread is not None
    assert planned is not None
    assert (spread.kind, spread.payload_model) == ("workflow", Payload)
    assert (planned.kind, planned.max_attempts) == ("manual", 2)
    with pytest.raises(RegistrationError, match="must be a job registered"):
        registry.fan_out(payload=Payload, chunk=not_registered, name="other")(plan)


def test_an_activity_takes_its_payload_model_from_its_parameter() -> None:
    registry = Registry()

    @registry.activity(max_attempts=3)
    async def price(part: Part) -> dict[str, Any]:
        return {"price": part.start * 2}

    async def untyped(part) -> None:  # type: ignore[no-untyped-def]
        return None

    async def two(part: Part, other: int) -> None:
        return None

    job = registry.get("price")
    assert job is not None
    assert (job.kind, job.payload_model, job.max_attempts) == ("manual", Part, 3)
    assert registry.by_handler(price) is job, "a step names it by the function as written"
    for wrong in (untyped, two):
        with pytest.raises(RegistrationError, match="one parameter annotated"):
            registry.activity()(wrong)  # type: ignore[arg-type]


def test_transactional_is_refused_where_a_run_is_not_one_handler_call() -> None:
    registry = Registry()

    @registry.event_handler(topic="tallies", payload=Payload, transactional=True)
    async def tally(event: Payload, ctx: JobContext) -> None:
        return None

    with pytest.raises(RegistrationError, match="batch handler cannot hold its writes"):

        @registry.batch_handler(topic="many", payload=Payload, transactional=True)
        async def many(items: list[Payload], ctx: BatchContext) -> None:
            return None

    with pytest.raises(RegistrationError, match="data cannot hold its writes"):

        @registry.data_processor(transactional=True)
        async def chunks(ctx: JobContext) -> None:
            return None

    with pytest.raises(RegistrationError, match="workflow cannot hold its writes"):

        @registry.workflow(transactional=True)
        def flow(flow: Flow) -> Steps:
            yield flow.sleep(timedelta(seconds=1))

    job = registry.get("tally")
    assert job is not None
    assert job.transactional
