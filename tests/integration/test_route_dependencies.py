"""Every route dependency is a coroutine: FastAPI runs a plain `def` dependency in its thread
pool, a thread hop for every request (every delivered event) that the profile showed. And each
route asks for the services it uses, one typed dependency per service, never for the whole of
what start-up opened."""

import inspect
import typing
from collections.abc import Iterator

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from app.core.config import Settings
from app.main import create_app
from app.services import AppState, Starting


def dependencies_of(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from dependencies_of(sub)


def awaited(call: object) -> bool:
    """A coroutine function, or an object (a security scheme) whose `__call__` is one."""
    if inspect.isfunction(call):
        return inspect.iscoroutinefunction(call)
    return inspect.iscoroutinefunction(type(call).__call__)


def test_no_route_dependency_runs_in_the_thread_pool(settings: Settings) -> None:
    app = create_app(settings)
    synchronous = set()
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.route, APIRoute):
            continue  # the documentation pages: no dependencies
        for dependency in dependencies_of(context.route.dependant):
            if not awaited(dependency.call):
                synchronous.add(f"{context.path}: {dependency.call!r}")

    assert not synchronous, sorted(synchronous)


def takes_everything(call: object) -> bool:
    hints = typing.get_type_hints(call if inspect.isfunction(call) else type(call).__call__)
    return any(hint in (AppState, Starting) for name, hint in hints.items() if name != "return")


def test_routes_ask_for_services_not_for_the_app_state(settings: Settings) -> None:
    app = create_app(settings)
    whole = set()
    seen = 0
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.route, APIRoute):
            continue
        for dependant in [context.route.dependant, *dependencies_of(context.route.dependant)]:
            seen += 1
            if dependant.call is not None and takes_everything(dependant.call):
                whole.add(f"{context.path}: {dependant.call!r}")

    assert seen > 100  # the walk reaches the endpoints and their dependencies
    allowed = {"/healthz", "/readyz"}  # the probes report the start-up phase itself
    assert {entry for entry in whole if entry.split(":")[0] not in allowed} == set()
