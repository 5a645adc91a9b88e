"""Route dependencies as `Annotated` aliases."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPBearer

from app.api.schemas import OPERATOR_PROBLEMS
from app.api.state import AppState, Starting


async def get_starting(request: Request) -> Starting:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per request.
    starting: Starting = request.state.starting
    return starting


async def get_state(request: Request) -> AppState:
    """The app's resources; `StillStarting` (503) until start-up has opened them."""
    return (await get_starting(request)).require()


State = Annotated[AppState, Depends(get_state)]
StartingApp = Annotated[Starting, Depends(get_starting)]

# Declares the operator token in the OpenAPI schema; `app.api.access.AccessGate` checks it (and
# the sidecar's token) for every route, so that no route can be left out.
operator_auth = HTTPBearer(auto_error=False, description="the operator token (Api:OperatorToken)")


def operator_router(prefix: str, tag: str) -> APIRouter:
    """A router of the operator API: behind the bearer token, with its problem answers."""
    return APIRouter(
        prefix=prefix,
        tags=[tag],
        dependencies=[Depends(operator_auth)],
        responses=OPERATOR_PROBLEMS,
    )
