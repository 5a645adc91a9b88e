"""Pub/sub deliveries from the sidecar: the hottest path of the app, one request per event, or
one per batch of events for a bulk-subscribed topic.

`answer_delivery` is the whole of it: find the topic's job, read the CloudEvent, hand it to
the dispatcher, say SUCCESS, RETRY or DROP; `answer_bulk_delivery` does the same for each entry
of a bulk delivery at once and says it entry by entry (daprd retries, drops or dead-letters each
on its own). `DeliveryLane` serves `POST /events/...` and `POST /bulk-events/...` with them
as a plain ASGI handler, behind the access gate and the body limit but ahead of FastAPI
(app/api/worker_app.py): its middleware, routing, dependency solving and response models, and
the server span the OpenTelemetry middleware would make per request (the run's own span joins
daprd's trace all the same). The FastAPI route of the same path (app/api/routes/dapr.py)
documents it and answers the same way.
"""

import asyncio
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from loguru import logger
from opentelemetry import context, propagate
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from app.dapr.cloudevents import CloudEvent
from app.dapr.outcomes import DeliveryOutcome
from app.dispatch.dispatcher import Dispatcher
from app.workers.registry import Job, Registry

if TYPE_CHECKING:
    from loguru import Logger

DELIVERY_PREFIX = "/events/"
BULK_DELIVERY_PREFIX = "/bulk-events/"
BULK_WAIT_MS = 5
"""How long daprd lets a bulk delivery fill before it sends what it has."""
_ENTRY_ID = re.compile(rb'"entryId"\s*:\s*"([^"]{1,100})"')
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
        event = json.loads(body)
    except (ValueError, RecursionError) as exc:
        log.bind(error=str(exc)[:500]).warning("not a CloudEvent: dropped")
        return DeliveryOutcome.DROP
    return await _answer_event(engine, job, event, log)


async def answer_bulk_delivery(
    engine: Dispatcher,
    workers: Registry,
    *,
    default_pubsub: str,
    pubsub: str,
    topic: str,
    body: bytes,
    max_event_bytes: int,
) -> list[dict[str, str]]:
    """A bulk delivery's entries, handed to the dispatcher together (so a batch handler gets
    them as one batch): a status per entry, by its `entryId`. An entry over `max_event_bytes`
    is dropped, as a single delivery over it is."""
    log = logger.bind(pubsub=pubsub, topic=topic)
    job = workers.by_topic(pubsub, topic, default_pubsub=default_pubsub)
    try:
        entries = _entries(json.loads(body))
    except (ValueError, RecursionError) as exc:
        # An event too deep for the parser hides its siblings too: all are dropped, daprd
        # dead-letters them, and each is recorded as a dead run that can be retried.
        ids = [match.decode(errors="replace") for match in _ENTRY_ID.findall(body)]
        log.bind(error=str(exc)[:500], entries=len(ids)).error(
            "a bulk delivery the app cannot read: its entries are dropped to the dead letters"
        )
        return [{"entryId": entry_id, "status": DeliveryOutcome.DROP.value} for entry_id in ids]

    async def answer(entry: dict[str, Any]) -> DeliveryOutcome:
        if job is None:
            log.error("no handler for this topic: register one with @registry.event_handler(...)")
            return DeliveryOutcome.DROP
        content_type = str(entry.get("contentType") or "application/json")
        if not is_json(content_type):
            log.bind(content_type=content_type).warning("not a JSON CloudEvent: dropped")
            return DeliveryOutcome.DROP
        event = entry.get("event")
        if len(body) > max_event_bytes and _size(event) > max_event_bytes:
            log.bind(limit=max_event_bytes).warning("event too large: dropped")
            return DeliveryOutcome.DROP
        traceparent = event.get("traceparent") if isinstance(event, dict) else None
        token = context.attach(propagate.extract({"traceparent": traceparent or ""}))
        try:
            return await _answer_event(engine, job, event, log)
        finally:
            context.detach(token)

    outcomes = await asyncio.gather(*(answer(entry) for entry in entries))
    return [
        {"entryId": str(entry.get("entryId")), "status": outcome.value}
        for entry, outcome in zip(entries, outcomes, strict=True)
    ]


def _size(event: Any) -> int:
    try:
        return len(json.dumps(event, separators=(",", ":")).encode())
    except (ValueError, TypeError, RecursionError):
        return 0


def _entries(envelope: Any) -> list[dict[str, Any]]:
    entries = envelope.get("entries") if isinstance(envelope, dict) else None
    if not isinstance(entries, list):
        raise ValueError("a bulk delivery without a list of entries")
    return [entry for entry in entries if isinstance(entry, dict)]


async def _answer_event(engine: Dispatcher, job: Job, event: Any, log: "Logger") -> DeliveryOutcome:
    try:
        cloud_event = CloudEvent.model_validate(event)
    except ValidationError as exc:
        log.bind(error=str(exc)[:500]).warning("not a CloudEvent: dropped")
        return DeliveryOutcome.DROP
    try:
        return await engine.deliver(job, cloud_event)
    except Exception:
        log.bind(job=job.name, event_id=cloud_event.id).exception(
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
    """The ASGI app of deliveries alone (app/api/worker_app.py sends it nothing else)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = _delivery_route(scope)
        assert route is not None, "only deliveries are sent to the delivery lane"
        prefix, pubsub, topic = route
        headers = _headers(scope)
        body = await _body(receive)
        state = scope["state"]["starting"].state
        if state is None:
            # Start-up has not opened the database yet: daprd delivers it again (a bulk
            # delivery's entries, each without a status, too).
            await _answer(send, _ANSWERS[DeliveryOutcome.RETRY])
            return
        if prefix == BULK_DELIVERY_PREFIX:
            statuses = await answer_bulk_delivery(
                state.dispatcher,
                state.registry,
                default_pubsub=state.settings.dapr.pubsub_name,
                pubsub=pubsub,
                topic=topic,
                body=body,
                max_event_bytes=state.settings.api.max_request_bytes,
            )
            await _answer(send, json.dumps({"statuses": statuses}).encode())
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


def is_delivery(scope: Scope) -> bool:
    """A request the delivery lane answers."""
    return _delivery_route(scope) is not None


def _delivery_route(scope: Scope) -> tuple[str, str, str] | None:
    """(prefix, pubsub, topic) of `POST /events/<pubsub>/<topic>` or of its bulk twin
    `POST /bulk-events/<pubsub>/<topic>`; None for any other request."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path: str = scope["path"]
    prefix = next((p for p in (DELIVERY_PREFIX, BULK_DELIVERY_PREFIX) if path.startswith(p)), None)
    if prefix is None:
        return None
    parts = path[len(prefix) :].split("/")
    if len(parts) != 2 or not all(parts):
        return None
    return prefix, parts[0], parts[1]


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
