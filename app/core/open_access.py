"""Secure by default: outside local development the app does not start without its tokens.

A worker service that anyone on the network can make trigger, cancel and requeue jobs (or feed
events, through the sidecar's routes) must not be open unless someone asked for it. Open access
is allowed in two ways only: `App:Environment=Development` (what `make run` sets), or a setting
that says so in its name (`Api:AllowAnonymousOperators`, `Dapr:AllowAnonymousSidecar`).
"""

from loguru import logger

from app.core.config import Settings
from app.core.errors import StartRefused

SIDECAR_TOKEN_MISSING = (
    "APP_API_TOKEN (Dapr:AppApiToken) is not set: the sidecar's routes (events, bindings, "
    "Jobs API triggers, actors) would take calls from anyone. Set it to the token daprd sends "
    "(its APP_API_TOKEN), or Dapr__AllowAnonymousSidecar=true to serve them without one"
)
OPERATOR_TOKEN_MISSING = (
    "Api:OperatorToken (Api__OperatorToken) is not set: the operator API and the dashboard "
    "would let anyone trigger, cancel and requeue jobs. Set it, or "
    "Api__AllowAnonymousOperators=true to serve them without one"
)


class OpenAccessRefused(StartRefused):
    """The settings would serve an audience without its token, and nobody asked for that."""


def open_audiences(settings: Settings) -> list[str]:
    """What would be served without a token, each said with the setting that closes it."""
    problems = []
    if not settings.dapr.app_api_token and not settings.dapr.allow_anonymous_sidecar:
        problems.append(SIDECAR_TOKEN_MISSING)
    if not settings.api.operator_token and not settings.api.allow_anonymous_operators:
        problems.append(OPERATOR_TOKEN_MISSING)
    return problems


def refuse_open_access(settings: Settings) -> None:
    """Stops the start outside Development when a token is missing; in Development, warns."""
    if not settings.dapr.app_api_token and settings.dapr.allow_anonymous_sidecar:
        logger.warning(
            "the sidecar's routes take calls without a token (Dapr:AllowAnonymousSidecar)"
        )
    if not settings.api.operator_token and settings.api.allow_anonymous_operators:
        logger.warning("the operator API and dashboard are open (Api:AllowAnonymousOperators)")
    problems = open_audiences(settings)
    if not problems:
        return
    environment = settings.app.environment
    if settings.app.is_development:
        for problem in problems:
            logger.bind(environment=environment).warning("open access (Development): " + problem)
        return
    message = (
        f"refusing to start in environment {environment!r} (App:Environment; only "
        f"'Development' may run without tokens): " + "; ".join(problems)
    )
    logger.bind(environment=environment).error(message)
    raise OpenAccessRefused(message)
