"""The app token on the routes DaprActor adds (`/dapr/config`, `/actors/...`), which our route
dependencies do not cover: when APP_API_TOKEN is set, only the sidecar may call them."""

import secrets

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

_GUARDED_PREFIXES = ("/actors/", "/dapr/config")


class DaprTokenMiddleware:
    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self._app = app
        self._token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self._token is not None
            and scope["type"] == "http"
            and str(scope["path"]).startswith(_GUARDED_PREFIXES)
        ):
            given = dict(scope["headers"]).get(b"dapr-api-token", b"")
            if not secrets.compare_digest(given, self._token):
                refusal = JSONResponse({"detail": "missing or wrong dapr-api-token"}, 401)
                await refusal(scope, receive, send)
                return
        await self._app(scope, receive, send)
