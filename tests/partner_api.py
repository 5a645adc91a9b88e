"""A stand-in for an external partner API, served for real over HTTP on 127.0.0.1.

It serves the change feed the DataSyncWorker reads (`GET /items?after=&limit=`) and fails on
purpose: every `fail_every`-th request answers 503, so the worker's retries run for real.
"""

import asyncio
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support import eventually_sync


@dataclass
class PartnerState:
    items: list[dict[str, Any]] = field(default_factory=list)
    fail_every: int = 3
    requests: int = 0
    failures: int = 0
    served: list[tuple[int, int]] = field(default_factory=list)  # (after, count) answered
    answer_after_seconds: float = 0.0  # a slow partner: each answer takes this long

    def add_items(self, count: int) -> None:
        start = len(self.items)
        for n in range(start, start + count):
            self.items.append(
                {"id": f"ext-{n}", "seq": n + 1, "name": f"Item {n}", "price": n % 97}
            )


class PartnerApi:
    def __init__(self, state: PartnerState) -> None:
        self.state = state
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        app = Starlette(routes=[Route("/items", self._items)])
        self._server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        )
        self._thread = threading.Thread(target=self._serve, name="partner-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def start(self) -> None:
        self._thread.start()
        eventually_sync(lambda: self._server.started, within=10, what="the partner API")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    async def _items(self, request: Request) -> Response:
        state = self.state
        state.requests += 1
        if state.answer_after_seconds:
            await asyncio.sleep(state.answer_after_seconds)  # the partner's latency, not a wait
        if state.fail_every and state.requests % state.fail_every == 0:
            state.failures += 1
            return JSONResponse({"error": "try again"}, status_code=503)
        after = int(request.query_params.get("after", 0))
        limit = int(request.query_params.get("limit", 100))
        page = [item for item in state.items if item["seq"] > after][:limit]
        state.served.append((after, len(page)))
        return JSONResponse({"items": page})
