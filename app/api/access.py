"""Who may call what: one gate in front of every route.

Each path belongs to one audience. The probes are public. The routes the sidecar calls
(subscriptions, deliveries, bindings, Jobs API triggers, actors, dead letters) need the
`dapr-api-token` header when APP_API_TOKEN is set. Everything else (the operator API, the
OpenAPI schema and docs, and any path not known here) needs `Authorization: Bearer <token>`
when Api:OperatorToken is set; Api:ViewerToken, when set, opens the GET routes only. The
dashboard (`/dashboard`) keeps its own sessions (`app.dashboard.session`): this gate leaves it
to them. Tokens are compared in constant time.
"""

import secrets
from collections.abc import Iterable
from enum import Enum

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
SIDECAR_PREFIXES = ("/dapr/", "/actors/", "/events/", "/bulk-events/", "/job/", "/dead-letters/")
DASHBOARD_PREFIX = "/dashboard"
READ_METHODS = frozenset({"GET", "HEAD"})


class Audience(Enum):
    PUBLIC = "public"
    SIDECAR = "sidecar"
    OPERATOR = "operator"
    DASHBOARD = "dashboard"


def audience_of(path: str, binding_paths: frozenset[str]) -> Audience:
    if path in PUBLIC_PATHS:
        return Audience.PUBLIC
    if path.startswith(SIDECAR_PREFIXES) or path in binding_paths:
        return Audience.SIDECAR
    if path == DASHBOARD_PREFIX or path.startswith(DASHBOARD_PREFIX + "/"):
        return Audience.DASHBOARD
    return Audience.OPERATOR


class AccessGate:
    def __init__(
        self,
        app: ASGIApp,
        *,
        sidecar_token: str | None,
        operator_token: str | None,
        binding_paths: Iterable[str],
        viewer_token: str | None = None,
    ) -> None:
        self._app = app
        self._sidecar_token = sidecar_token.encode() if sidecar_token else None
        self._operator_token = operator_token.encode() if operator_token else None
        self._viewer_token = viewer_token.encode() if viewer_token else None
        self._binding_paths = frozenset(binding_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self._app(scope, receive, send)

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        audience = audience_of(str(scope["path"]), self._binding_paths)
        headers = Headers(scope=scope)
        if audience is Audience.SIDECAR and self._sidecar_token is not None:
            given = headers.get("dapr-api-token", "").encode()
            if not secrets.compare_digest(given, self._sidecar_token):
                return JSONResponse({"detail": "missing or wrong dapr-api-token"}, 401)
        if audience is Audience.OPERATOR and self._operator_token is not None:
            scheme, _, credentials = headers.get("authorization", "").partition(" ")
            given = credentials.strip().encode() if scheme.lower() == "bearer" else b""
            if secrets.compare_digest(given, self._operator_token):
                return None
            if self._viewer_token is not None and secrets.compare_digest(given, self._viewer_token):
                if scope["method"] in READ_METHODS:
                    return None
                return JSONResponse({"detail": "the viewer token is read-only"}, 403)
            return JSONResponse(
                {"detail": "missing or wrong bearer token"},
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return None
