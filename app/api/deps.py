"""Route dependencies as `Annotated` aliases."""

import secrets
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api.state import AppState


def get_state(request: Request) -> AppState:
    state: AppState = request.state.app
    return state


State = Annotated[AppState, Depends(get_state)]

_bearer = HTTPBearer(auto_error=False, description="the operator token (Api:OperatorToken)")


def require_dapr_token(
    state: State, dapr_api_token: Annotated[str | None, Header()] = None
) -> None:
    """When APP_API_TOKEN is set, only the sidecar (which sends it) may call the Dapr routes."""
    expected = state.settings.dapr.app_api_token
    if expected and not _same(dapr_api_token, expected):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong dapr-api-token")


def require_operator(
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """When Api:OperatorToken is set, the operator API requires it as a bearer token."""
    expected = state.settings.api.operator_token
    if expected and not _same(credentials.credentials if credentials else None, expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


def _same(given: str | None, expected: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())
