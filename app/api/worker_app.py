"""The ASGI app the sidecar and operators call: FastAPI, with pub/sub deliveries taken before it.

A delivery (`POST /events/<pubsub>/<topic>`, or its bulk twin) is the request the app serves
most, one per event: it passes the access gate and the body limit to the delivery lane
(app/api/delivery.py) and none of FastAPI's middleware stack (its error middleware, the
OpenTelemetry middleware, which leaves deliveries out anyway, FastAPI's own layers, routing),
which cost a single delivery about a tenth of its CPU. Every other request is FastAPI's.
"""

from collections.abc import Callable

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.delivery import DeliveryLane, is_delivery


class WorkerApp(FastAPI):
    _deliveries: ASGIApp | None = None

    def serve_deliveries(self, guarded: Callable[[ASGIApp], ASGIApp]) -> None:
        """Deliveries go to the delivery lane behind `guarded` (the gate and the limit)."""
        self._deliveries = guarded(DeliveryLane())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._deliveries is not None and is_delivery(scope):
            await self._deliveries(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
