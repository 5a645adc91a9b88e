"""The app's calls to its own Dapr sidecar over HTTP."""

from types import TracebackType
from typing import Any, Self

import httpx

from app.core.config import Settings
from app.core.errors import Refused


class Sidecar:
    def __init__(self, settings: Settings, *, timeout: float = 5.0) -> None:
        self._settings = settings
        self._pubsub = settings.dapr.pubsub_name
        self._http = self.client(timeout=timeout)

    def client(self, *, timeout: float) -> httpx.AsyncClient:
        """An HTTP client of the sidecar's API, with the API token when one is set."""
        token = self._settings.dapr.api_token
        return httpx.AsyncClient(
            base_url=self._settings.sidecar_http_url,
            headers={"dapr-api-token": token} if token else {},
            timeout=timeout,
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

    async def schedule_job(
        self, name: str, *, schedule: str | None, due_time: str | None, data: Any
    ) -> None:
        """Creates or replaces a Jobs API job; the scheduler fires `POST /job/<name>` on the app."""
        body: dict[str, Any] = {"data": data, "overwrite": True}
        if schedule is not None:
            body["schedule"] = schedule
        if due_time is not None:
            body["dueTime"] = due_time
        response = await self._http.post(f"/v1.0/jobs/{name}", json=body)
        _raise_for_status(response)

    async def delete_job(self, name: str) -> None:
        response = await self._http.delete(f"/v1.0/jobs/{name}")
        if response.status_code != 404:
            _raise_for_status(response)


class SidecarError(Refused):
    """The sidecar refused a call; the message carries its error code and text (502: the
    gateway the app depends on said no)."""

    status_code = 502

    def __init__(self, sidecar_status: int, body: str) -> None:
        super().__init__(f"sidecar answered {sidecar_status}: {body}")
        self.sidecar_status = sidecar_status


def _raise_for_status(response: httpx.Response) -> None:
    if response.is_error:
        raise SidecarError(response.status_code, response.text)
