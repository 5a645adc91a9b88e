"""Liveness and readiness probes, served from the first moment (start-up runs behind them)."""

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from loguru import logger

from app.db.mongo import ping
from app.services import StartingApp

router = APIRouter(tags=["health"])

_CHECK_TIMEOUT_S = 3.0


@router.get("/healthz", responses={503: {"description": "start-up failed for good"}})
async def get_liveness(starting: StartingApp) -> JSONResponse:
    """Liveness: the process answers, while it starts too (`phase`: starting, started); 503
    once start-up has failed for good, so that the orchestrator restarts it."""
    body: dict[str, Any] = {"status": "ok", "instance": starting.instance, "phase": starting.phase}
    if starting.failure is not None:
        body.update(status="failing", error=starting.failure)
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)


@router.get(
    "/readyz", responses={503: {"description": "starting, or a dependency does not answer"}}
)
async def get_readiness(starting: StartingApp) -> JSONResponse:
    """Readiness: 200 when start-up is done and MongoDB and the Dapr sidecar answer; 503 saying
    what start-up waits for, or naming each failing check."""
    state = starting.state
    if state is None:
        waiting = starting.failure or starting.waiting_for
        body: dict[str, Any] = {
            "status": "starting",
            "waiting_for": waiting,
            "phase": starting.phase,
        }
        return JSONResponse(body, status_code=503)
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
