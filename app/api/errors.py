"""Every refusal (`app.core.errors.Refused`) answered in one place: its status, its message as
`detail`, the fields it carries, its headers."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.core.errors import Refused


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc), **exc.details()}, exc.status_code, headers=exc.headers()
        )
