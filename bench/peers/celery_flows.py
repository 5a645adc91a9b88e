"""Sends Celery's canvases for the workflow benchmark: a chain of three steps, or a chord of
ten with a callback, per flow name."""

from celery import chain, chord

from bench.peers.celery_app import finished, step
from bench.workers import FAN_OUT_WIDTH


def send(shape: str, flows: list[str]) -> None:
    for flow in flows:
        if shape == "chain":
            chain(step.si(flow, 0), step.si(flow, 1), step.si(flow, 2), finished.si([], flow))()
        else:
            chord(step.si(flow, n) for n in range(FAN_OUT_WIDTH))(finished.s(flow))
