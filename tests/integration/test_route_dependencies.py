"""Every route dependency is a coroutine: FastAPI runs a plain `def` dependency in its thread
pool, a thread hop for every request (every delivered event) that the profile showed."""

import inspect
from collections.abc import Iterator

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from app.core.config import Settings
from app.main import create_app


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
