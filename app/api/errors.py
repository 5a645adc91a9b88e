"""Maps the dispatcher's refusals to HTTP answers, by class."""

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from app.dapr.sidecar import SidecarError
from app.dispatch.errors import PayloadInvalid, RunNotActionable, UnknownJob
from app.operations.actions import UnknownSchedule
from app.repositories.runs import UnknownRun
from app.services import StillStarting


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(UnknownJob)
    async def unknown_job(request: Request, exc: UnknownJob) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status.HTTP_404_NOT_FOUND)

    @app.exception_handler(UnknownRun)
    async def unknown_run(request: Request, exc: UnknownRun) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status.HTTP_404_NOT_FOUND)

    @app.exception_handler(UnknownSchedule)
    async def unknown_schedule(request: Request, exc: UnknownSchedule) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status.HTTP_404_NOT_FOUND)

    @app.exception_handler(PayloadInvalid)
    async def payload_invalid(request: Request, exc: PayloadInvalid) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc), "errors": exc.errors}, status.HTTP_422_UNPROCESSABLE_CONTENT
        )

    @app.exception_handler(RunNotActionable)
    async def not_actionable(request: Request, exc: RunNotActionable) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc), "status": exc.run.status.value}, status.HTTP_409_CONFLICT
        )

    @app.exception_handler(StillStarting)
    async def still_starting(request: Request, exc: StillStarting) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc)}, status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "1"}
        )

    @app.exception_handler(SidecarError)
    async def sidecar_error(request: Request, exc: SidecarError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status.HTTP_502_BAD_GATEWAY)
