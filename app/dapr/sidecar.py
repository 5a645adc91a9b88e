"""The app's calls to its own Dapr sidecar over HTTP."""

from types import TracebackType
from typing import Any, Self

import httpx

from app.core.config import Settings


class Sidecar:
    def __init__(self, settings: Settings, *, timeout: float = 5.0) -> None:
        headers = {"dapr-api-token": settings.dapr.api_token} if settings.dapr.api_token else {}
        self._pubsub = settings.dapr.pubsub_name
        self._http = httpx.AsyncClient(
            base_url=settings.sidecar_http_url, headers=headers, timeout=timeout
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    async def check_outbound(self) -> None:
        """Raises unless the sidecar's components are ready for the app's outbound calls."""
        response = await self._http.get("/v1.0/healthz/outbound")
        response.raise_for_status()

    async def publish(self, topic: str, data: Any, *, pubsub: str | None = None) -> None:
        response = await self._http.post(
            f"/v1.0/publish/{pubsub or self._pubsub}/{topic}", json=data
        )
        response.raise_for_status()
