"""The routes the Dapr sidecar calls: subscriptions, pub/sub deliveries and input bindings.

Thin by design: parse what the sidecar sends, find the worker in the registry, hand it to the
dispatcher, and map the outcome to the answer Dapr understands.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from loguru import logger
from pydantic import ValidationError

from app.api.deps import State, require_dapr_token
from app.api.state import AppState
from app.core.clock import utc_now
from app.dapr.cloudevents import CloudEvent
from app.dapr.outcomes import DeliveryOutcome
from app.workers.registry import Registry

router = APIRouter(tags=["dapr"], dependencies=[Depends(require_dapr_token)])


@router.get("/dapr/subscribe")
async def list_subscriptions(state: State) -> list[dict[str, Any]]:
    """The programmatic subscriptions, one per event handler in the registry."""
    return [
        {"pubsubname": w.pubsub, "topic": w.topic, "route": f"/events/{w.pubsub}/{w.topic}"}
        for w in state.registry
        if w.topic is not None
    ]


@router.post("/events/{pubsub}/{topic}")
async def deliver_event(pubsub: str, topic: str, request: Request, state: State) -> dict[str, str]:
    """One CloudEvent from the sidecar; answers SUCCESS, RETRY or DROP."""
    worker = state.registry.by_topic(pubsub, topic)
    if worker is None:
        logger.bind(pubsub=pubsub, topic=topic).error(
            "no handler for this topic: register one with @registry.event_handler(topic=...)"
        )
        return {"status": DeliveryOutcome.DROP}
    try:
        event = CloudEvent.model_validate(await request.json())
    except (ValidationError, ValueError) as exc:
        logger.bind(pubsub=pubsub, topic=topic).warning("not a CloudEvent, dropped: {}", exc)
        return {"status": DeliveryOutcome.DROP}
    try:
        outcome = await state.dispatcher.deliver_event(worker, event)
    except Exception:
        logger.bind(job=worker.name, event_id=event.id).exception(
            "could not record the run; asking Dapr to redeliver"
        )
        outcome = DeliveryOutcome.RETRY
    return {"status": outcome}


def binding_router(registry: Registry) -> APIRouter:
    """`POST /<binding>` for each scheduled job's cron input binding."""
    bindings = APIRouter(tags=["dapr"], dependencies=[Depends(require_dapr_token)])
    for worker in registry:
        if worker.binding is not None:
            bindings.add_api_route(
                f"/{worker.binding}",
                _tick_route(worker.name),
                methods=["POST"],
                name=f"fire_{worker.name}",
                summary=f"Cron tick for {worker.name}",
            )
    return bindings


def _tick_route(job: str) -> Callable[[AppState], Awaitable[dict[str, str]]]:
    async def fire(state: State) -> dict[str, str]:
        worker = state.registry.get(job)
        assert worker is not None, f"job {job!r} left the registry"
        run = await state.dispatcher.fire_tick(worker, utc_now())
        return {"run_id": run.id, "status": run.status}

    return fire
