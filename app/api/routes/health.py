"""Liveness and readiness probes."""

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from loguru import logger

from app.api.deps import State
from app.db.mongo import ping

router = APIRouter(tags=["health"])

_CHECK_TIMEOUT_S = 3.0


@router.get("/healthz")
async def get_liveness(state: State) -> dict[str, str]:
    """Liveness: the process answers (and says which instance it is)."""
    return {"status": "ok", "instance": state.instance}


@router.get("/readyz", responses={503: {"description": "a dependency does not answer"}})
async def get_readiness(state: State) -> JSONResponse:
    """Readiness: 200 when MongoDB and the Dapr sidecar answer, 503 naming each failing check."""
    checks = {"mongodb": ping(state.mongo), "sidecar": state.sidecar.check_outbound()}
    results = await asyncio.gather(
        *(asyncio.wait_for(check, _CHECK_TIMEOUT_S) for check in checks.values()),
        return_exceptions=True,
    )
    report: dict[str, Any] = {}
    for name, result in zip(checks, results, strict=True):
        if isinstance(result, BaseException):
            report[name] = {"status": "failing", "error": f"{type(result).__name__}: {result}"}
            logger.bind(check=name, error=repr(result)).warning("readiness check failing")
        else:
            report[name] = {"status": "ok"}
    ready = all(entry["status"] == "ok" for entry in report.values())
    failing = [name for name, entry in report.items() if entry["status"] != "ok"]
    body = {"status": "ready" if ready else "not ready", "failing": failing, "checks": report}
    return JSONResponse(body, status_code=200 if ready else 503)
