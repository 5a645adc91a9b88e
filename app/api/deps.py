"""Route dependencies as `Annotated` aliases."""

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from app.api.state import AppState


def get_state(request: Request) -> AppState:
    state: AppState = request.state.app
    return state


State = Annotated[AppState, Depends(get_state)]


def require_dapr_token(
    state: State, dapr_api_token: Annotated[str | None, Header()] = None
) -> None:
    """When APP_API_TOKEN is set, only the sidecar (which sends it) may call the Dapr routes."""
    expected = state.settings.dapr.app_api_token
    if expected and dapr_api_token != expected:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong dapr-api-token")
