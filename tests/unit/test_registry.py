from typing import Any

import pytest
from pydantic import BaseModel

from app.workers.context import JobContext
from app.workers.registry import RegistrationError, Registry


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
    assert registry.by_topic("pubsub", "orders") is registry.get("on_order")
    assert registry.by_binding("nightly-cron") is registry.get("nightly")
    assert registry.by_topic("pubsub", "other") is None
    assert {w.kind for w in registry} == {"event", "scheduled"}


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
