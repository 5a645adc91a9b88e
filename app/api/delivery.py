"""Pub/sub deliveries from the sidecar: the hottest path of the app, one request per event.

`answer_delivery` is the whole of it: find the topic's job, read the CloudEvent, hand it to
the dispatcher, say SUCCESS, RETRY or DROP. `DeliveryLane` serves `POST /events/...` with it
as a plain ASGI handler, inside the access gate and the body limit but ahead of FastAPI's
routing, dependency solving and response models, and of the server span the OpenTelemetry
middleware would make per request (the run's own span joins daprd's trace all the same). The
FastAPI route of the same path (app/api/routes/dapr.py) documents it and answers the same way.
"""

import json
from collections.abc import Mapping

from loguru import logger
from opentelemetry import context, propagate
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from app.dapr.cloudevents import CloudEvent
from app.dapr.outcomes import DeliveryOutcome
from app.dispatch.dispatcher import Dispatcher
from app.workers.registry import Registry

DELIVERY_PREFIX = "/events/"
_ANSWERS = {outcome: json.dumps({"status": outcome.value}).encode() for outcome in DeliveryOutcome}


async def answer_delivery(
    engine: Dispatcher,
    workers: Registry,
    *,
    default_pubsub: str,
    pubsub: str,
    topic: str,
    content_type: str,
    body: bytes,
) -> DeliveryOutcome:
    """One CloudEvent from the sidecar: SUCCESS, RETRY or DROP."""
    log = logger.bind(pubsub=pubsub, topic=topic)
    job = workers.by_topic(pubsub, topic, default_pubsub=default_pubsub)
    if job is None:
        log.error("no handler for this topic: register one with @registry.event_handler(...)")
        return DeliveryOutcome.DROP
    if not is_json(content_type):
        log.bind(content_type=content_type).warning("not a JSON CloudEvent: dropped")
        return DeliveryOutcome.DROP
    try:
        # The stdlib's parser, not pydantic's: that one refuses nesting past ~200 levels, and
        # an event too deep to store must still reach the intake to be recorded as dead.
        event = CloudEvent.model_validate(json.loads(body))
    except (ValidationError, ValueError, RecursionError) as exc:
        log.bind(error=str(exc)[:500]).warning("not a CloudEvent: dropped")
        return DeliveryOutcome.DROP
    try:
        return await engine.deliver(job, event)
    except Exception:
        log.bind(job=job.name, event_id=event.id).exception(
            "could not record the run; asking Dapr to redeliver"
        )
        return DeliveryOutcome.RETRY


def is_json(content_type: str) -> bool:
    """`application/json`, `application/cloudevents+json` and the like (daprd sends the latter)."""
    media_type = content_type.split(";", maxsplit=1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


class DeliveryLane:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = _delivery_route(scope)
        if route is None:
            await self._app(scope, receive, send)
            return
        pubsub, topic = route
        headers = _headers(scope)
        body = await _body(receive)
        state = scope["state"]["starting"].state
        if state is None:
            # Start-up has not opened the database yet: daprd delivers it again.
            await _answer(send, _ANSWERS[DeliveryOutcome.RETRY])
            return
        # daprd's traceparent: the run's span and its record join that trace.
        token = context.attach(propagate.extract(headers))
        try:
            outcome = await answer_delivery(
                state.dispatcher,
                state.registry,
                default_pubsub=state.settings.dapr.pubsub_name,
                pubsub=pubsub,
                topic=topic,
                content_type=headers.get("content-type", ""),
                body=body,
            )
        finally:
            context.detach(token)
        await _answer(send, _ANSWERS[outcome])


async def _answer(send: Send, answer: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(answer)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": answer})


def _delivery_route(scope: Scope) -> tuple[str, str] | None:
    """(pubsub, topic) of `POST /events/<pubsub>/<topic>`; None for any other request."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path: str = scope["path"]
    if not path.startswith(DELIVERY_PREFIX):
        return None
    parts = path[len(DELIVERY_PREFIX) :].split("/")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


def _headers(scope: Scope) -> Mapping[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
