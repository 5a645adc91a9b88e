"""Route dependencies as `Annotated` aliases."""

from fastapi import APIRouter, Depends
from fastapi.security import HTTPBearer

from app.api.schemas import OPERATOR_PROBLEMS

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
