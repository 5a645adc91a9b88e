"""Prometheus metrics: `GET /metrics`, in the text exposition format."""

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import operator_auth
from app.services import Counts, Metrics

# A scrape every 15 s or so: the dead set is counted at most that often per instance.
SCRAPE_COUNTS_MAX_AGE_SECONDS = 10.0

router = APIRouter(tags=["metrics"], dependencies=[Depends(operator_auth)])


@router.get("/metrics", response_class=Response)
async def get_metrics(counts: Counts, metrics: Metrics) -> Response:
    """Runs by job, kind and outcome, attempt durations, queue wait, event lag, in-flight runs
    and the dead set's size, for Prometheus to scrape."""
    live = await counts.get(max_age_seconds=SCRAPE_COUNTS_MAX_AGE_SECONDS)
    metrics.dead_set.set(live["dead"])
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
