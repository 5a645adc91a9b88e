"""What a job's function is, by how it is registered (the registry's decorators are typed
with these: mypy rejects a handler that does not take what its registration says it gets)."""

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from app.workers.context import BatchContext, JobContext

PayloadT = TypeVar("PayloadT", bound=BaseModel)

ContextHandler = Callable[[JobContext], Awaitable[object]]
"""A job registered without `payload=`: `async def job(ctx: JobContext) -> ...`."""
PayloadHandler = Callable[[PayloadT, JobContext], Awaitable[object]]
"""A job registered with `payload=Model`: `async def job(item: Model, ctx: JobContext) -> ...`."""
BatchHandler = Callable[[list[PayloadT], BatchContext], Awaitable[Sequence[object] | None]]
"""`async def job(items: list[Model], ctx: BatchContext) -> list[...] | None`."""
ActivityFunction = Callable[[PayloadT], Awaitable[object]]
"""A plain step of workflows (`@registry.activity`): `async def step(item: Model) -> ...`."""
Handler = Callable[..., Awaitable[Any]]
"""Any of the three, as the executor calls it."""
