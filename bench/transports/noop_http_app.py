"""A no-op app daprd delivers to over HTTP: one programmatic subscription, every event answered
SUCCESS at once. A plain ASGI app (no framework): the transport's own cost, nothing of ours."""

import json
import os
from typing import Any

from starlette.types import Receive, Scope, Send

TOPIC = os.environ.get("BENCH_TOPIC", "bench-transport-http")
_SUBSCRIPTIONS = json.dumps(
    [{"pubsubname": "pubsub", "topic": TOPIC, "route": f"/events/{TOPIC}"}]
).encode()
_SUCCESS = b'{"status":"SUCCESS"}'


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    more: Any = True
    while more:  # the body, read and thrown away
        message = await receive()
        more = message.get("more_body", False)
    body = _SUBSCRIPTIONS if scope["path"] == "/dapr/subscribe" else _SUCCESS
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
