"""Prometheus metrics: `GET /metrics`, in the text exposition format."""

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import State, operator_auth

router = APIRouter(tags=["metrics"], dependencies=[Depends(operator_auth)])


@router.get("/metrics", response_class=Response)
async def get_metrics(state: State) -> Response:
    """Runs by job, kind and outcome, attempt durations, queue wait, event lag, in-flight runs
    and the dead set's size, for Prometheus to scrape."""
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
