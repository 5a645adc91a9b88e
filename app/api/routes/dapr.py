"""The routes the Dapr sidecar calls: subscriptions, pub/sub deliveries, input bindings and
Jobs API triggers.

Thin by design: parse what the sidecar sends, find the worker in the registry, hand it to the
dispatcher, and map the outcome to the answer Dapr understands.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from loguru import logger
from pydantic import BaseModel, Field

from app.api.delivery import (
    BULK_DELIVERY_PREFIX,
    BULK_WAIT_MS,
    DELIVERY_PREFIX,
    answer_bulk_delivery,
    answer_delivery,
)
from app.dapr.bindings import FIRED_AT_HEADER, fired_at
from app.dapr.dead_letters import DEAD_LETTER_TOPIC, DeadLetter
from app.dapr.outcomes import DeliveryOutcome
from app.dispatch.dispatcher import Dispatcher
from app.dispatch.intake import Submission
from app.services import AppSettings, Engine, Workers
from app.workers.registry import Job, Registry

router = APIRouter(tags=["dapr"])


class Delivery(BaseModel):
    status: DeliveryOutcome


class Recorded(BaseModel):
    run_id: str | None = Field(description="null when another instance claimed the occurrence")
    created: bool
    claimed_by: str | None = None
    paused: bool = Field(False, description="the job or schedule is paused: no run was made")
    kept: bool = Field(
        False, description="the database was away: the tick is kept and stored once it is back"
    )


@router.get("/dapr/subscribe")
async def list_subscriptions(workers: Workers, settings: AppSettings) -> list[dict[str, Any]]:
    """The programmatic subscriptions: one per event handler and queue processor, each naming
    the dead-letter topic (a bulk-subscribed job's with its batch size), and one to the
    dead-letter topic of each pub/sub."""
    default = settings.dapr.pubsub_name
    subscribed = [(w.pubsub_or(default), w) for w in workers if w.topic is not None]
    subscriptions = [
        topic_subscription(job, pubsub, max_in_flight=settings.worker.max_in_flight)
        for pubsub, job in subscribed
        if pubsub is not None
    ]
    for pubsub in sorted({pubsub for pubsub, _ in subscribed if pubsub is not None}):
        subscriptions.append(
            {
                "pubsubname": pubsub,
                "topic": DEAD_LETTER_TOPIC,
                "route": f"/dead-letters/{pubsub}",
                # Whatever was dead-lettered, CloudEvent or not, reaches the app.
                "metadata": {"rawPayload": "true"},
            }
        )
    return subscriptions


def topic_subscription(job: Job, pubsub: str, *, max_in_flight: int) -> dict[str, Any]:
    """A job's subscription to its topic. A bulk one delivers up to the job's batch size (at
    most the instance's MaxInFlight) per request, and waits `BULK_WAIT_MS` at most for a batch
    to fill: that is the delay a lone event pays."""
    subscription: dict[str, Any] = {
        "pubsubname": pubsub,
        "topic": job.topic,
        "route": f"{BULK_DELIVERY_PREFIX if job.bulk else DELIVERY_PREFIX}{pubsub}/{job.topic}",
        "deadLetterTopic": DEAD_LETTER_TOPIC,
    }
    if job.bulk:
        subscription["bulkSubscribe"] = {
            "enabled": True,
            "maxMessagesCount": min(job.batch_size or max_in_flight, max_in_flight),
            "maxAwaitDurationMs": BULK_WAIT_MS,
        }
    return subscription


@router.post("/dead-letters/{pubsub}")
async def receive_dead_letter(
    pubsub: str, request: Request, workers: Workers, settings: AppSettings, engine: Engine
) -> Delivery:
    """A message daprd dead-lettered: recorded as a dead run with the reason."""
    letter = DeadLetter.from_envelope(await _json_or_none(request))
    job = (
        workers.by_topic(pubsub, letter.topic, default_pubsub=settings.dapr.pubsub_name)
        if letter.topic
        else None
    )
    try:
        await engine.record_dead_letter(job, letter, pubsub=pubsub)
    except Exception:
        logger.bind(pubsub=pubsub, event_id=letter.id).exception(
            "could not record a dead letter; asking Dapr to redeliver"
        )
        return Delivery(status=DeliveryOutcome.RETRY)
    return Delivery(status=DeliveryOutcome.SUCCESS)


@router.post("/events/{pubsub}/{topic}")
async def deliver_event(
    pubsub: str,
    topic: str,
    *,
    request: Request,
    engine: Engine,
    workers: Workers,
    settings: AppSettings,
) -> Delivery:
    """One CloudEvent from the sidecar; answers SUCCESS, RETRY or DROP. (Served by
    `app.api.delivery.DeliveryLane` ahead of FastAPI, with the same answers.)"""
    outcome = await answer_delivery(
        engine,
        workers,
        default_pubsub=settings.dapr.pubsub_name,
        pubsub=pubsub,
        topic=topic,
        content_type=request.headers.get("content-type", ""),
        body=await request.body(),
    )
    return Delivery(status=outcome)


class EntryStatus(BaseModel):
    entryId: str  # daprd's name
    status: DeliveryOutcome


class BulkDelivery(BaseModel):
    statuses: list[EntryStatus]


@router.post("/bulk-events/{pubsub}/{topic}")
async def deliver_events_in_bulk(
    pubsub: str,
    topic: str,
    *,
    request: Request,
    engine: Engine,
    workers: Workers,
    settings: AppSettings,
) -> BulkDelivery:
    """A bulk delivery of a bulk-subscribed topic; answers a status per entry. (Served by
    `app.api.delivery.DeliveryLane` ahead of FastAPI, with the same answers.)"""
    statuses = await answer_bulk_delivery(
        engine,
        workers,
        default_pubsub=settings.dapr.pubsub_name,
        pubsub=pubsub,
        topic=topic,
        body=await request.body(),
        max_event_bytes=settings.api.max_request_bytes,
    )
    return BulkDelivery.model_validate({"statuses": statuses})


@router.post("/job/{name}")
async def fire_scheduled_job(name: str, request: Request, engine: Engine) -> Recorded:
    """A Jobs API schedule fired: its data names the job to run and its payload. 404 for a
    schedule of no registered job (the scheduler's failure policy cannot make that better)."""
    submission = await engine.fire_schedule(name, await _json_or_none(request))
    return _recorded(submission)


def binding_router(registry: Registry) -> APIRouter:
    """`POST /<binding>` for each job fired by a Dapr cron input binding."""
    bindings = APIRouter(tags=["dapr"])
    for job in registry:
        if job.binding is not None:
            bindings.add_api_route(
                f"/{job.binding}",
                _tick_route(job.name),
                methods=["POST"],
                name=f"fire_{job.name}",
                summary=f"Cron tick for {job.name}",
            )
    return bindings


def _tick_route(job: str) -> Callable[[Request, Dispatcher], Awaitable[Recorded]]:
    async def fire(request: Request, engine: Engine) -> Recorded:
        fired = fired_at(request.headers)
        if fired is None and FIRED_AT_HEADER in request.headers:
            logger.bind(job=job, written=request.headers[FIRED_AT_HEADER][:100]).warning(
                "cron firing's time unreadable: the tick is taken from this app's clock"
            )
        return _recorded(await engine.fire_tick(job, fired_at=fired))

    return fire


def _recorded(submission: Submission | None) -> Recorded:
    if submission is None:
        return Recorded(run_id=None, created=False, paused=True)
    return Recorded(
        run_id=submission.run.id if submission.run else None,
        created=submission.created,
        claimed_by=submission.claimed_by,
        kept=submission.kept,
    )


async def _json_or_none(request: Request) -> Any:
    body = await request.body()
    if not body.strip():
        return None
    try:
        return await request.json()
    except (ValueError, RecursionError):
        return None
