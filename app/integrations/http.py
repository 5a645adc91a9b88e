"""Outbound HTTP for integration tasks: timeouts, and retries with exponential backoff and
jitter (tenacity) for the failures that retrying can fix."""

from typing import Any

import httpx
from loguru import logger
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from app.core.errors import AevatarError

RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


class ExternalServiceError(AevatarError):
    """The external system kept failing, or answered with an error retrying cannot fix."""


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):  # timeouts, refused and reset connections
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in RETRYABLE_STATUS


def _log_retry(state: RetryCallState) -> None:
    outcome = state.outcome
    error = outcome.exception() if outcome else None
    logger.bind(attempt=state.attempt_number, error=repr(error)).warning(
        "external call failed; retrying"
    )


DEFAULT_TIMEOUT_SECONDS = 10.0
"""Of each outbound try, unless the call says otherwise."""


class ResilientHttp:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        attempts: int = 5,
        initial_wait: float = 0.2,
        max_wait: float = 10.0,
    ) -> None:
        self._client = client
        self._attempts = attempts
        self._initial_wait = initial_wait
        self._max_wait = max_wait

    async def get_json(
        self,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        seconds_per_try: float | None = None,
    ) -> Any:
        """GETs `url` and decodes its JSON, retrying transport errors, 429 and 5xx answers;
        `seconds_per_try` instead of the client's `DEFAULT_TIMEOUT_SECONDS`."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential_jitter(
                multiplier=self._initial_wait, max=self._max_wait, jitter=self._initial_wait
            ),
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self._client.get(
                        url, params=params, timeout=seconds_per_try or httpx.USE_CLIENT_DEFAULT
                    )
                    response.raise_for_status()
                    return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ExternalServiceError(f"GET {url} failed: {exc!r}") from exc
        raise AssertionError("unreachable: tenacity returns or raises")
