"""A limit on request bodies, on every route.

An operator route answers 413. A delivery from the sidecar answers 200 with DROP and a log line
(daprd then dead-letters the message, and the dead-letter route records it): a 4xx there would
be retried by daprd for as long as it lasts, since delivery to the app is retried until it
succeeds.
"""

from loguru import logger
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.delivery import BULK_DELIVERY_PREFIX, DELIVERY_PREFIX
from app.core.errors import AevatarError

# Deliveries, answered DROP; every other route (actor calls and bindings included) answers 413.
# A bulk delivery holds up to MaxInFlight events, each under the limit (the delivery lane drops
# one over it); over `bulk_max_bytes` in all it is answered without statuses, which daprd retries.
DELIVERY_PREFIXES = (DELIVERY_PREFIX, "/dead-letters/")


class BodyTooLarge(AevatarError):
    pass


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int, bulk_max_bytes: int) -> None:
        self._app = app
        self._max_bytes = max_bytes
        self._bulk_max_bytes = bulk_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = (
            self._bulk_max_bytes
            if str(scope["path"]).startswith(BULK_DELIVERY_PREFIX)
            else self._max_bytes
        )
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, int(declared), limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, limited_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send, received, limit)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, size: int, limit: int
    ) -> None:
        path = str(scope["path"])
        reason = f"request body of {size} bytes or more is over the limit of {limit}"
        if path.startswith(BULK_DELIVERY_PREFIX):
            logger.bind(path=path, bytes=size, limit=limit).error(
                "bulk delivery too large: answered without statuses (daprd retries its entries)"
            )
            response = JSONResponse({"statuses": [], "reason": reason})
        elif path.startswith(DELIVERY_PREFIXES):
            logger.bind(path=path, bytes=size, limit=self._max_bytes).warning(
                "delivery too large: dropped (daprd dead-letters it)"
            )
            response = JSONResponse({"status": "DROP", "reason": reason})
        else:
            response = JSONResponse({"detail": reason}, 413)
        await response(scope, receive, send)
