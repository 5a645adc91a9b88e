"""The data processor's fan-out form, on a workflow: a planning step splits the work into
chunks, each chunk runs as a step of its own (a run of the chunk's job, on whichever instance
Dapr hands the activity), and the result is assembled once all are done.

    @registry.manual(payload=Chunk)
    async def import_chunk(chunk: Chunk, ctx: JobContext) -> dict[str, Any]: ...

    @registry.fan_out(payload=ImportFile, chunk=import_chunk)
    async def import_file(job: ImportFile, ctx: JobContext) -> list[Chunk]: ...
"""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from app.workers.context import JobContext
from app.workers.flow import Flow, Steps
from app.workers.handlers import PayloadHandler, PayloadT

ChunkT = TypeVar("ChunkT", bound=BaseModel)

PlanHandler = Callable[[PayloadT, JobContext], Awaitable[list[ChunkT]]]
"""The plan of a fan-out: `async def plan(job: Model, ctx: JobContext) -> list[Chunk]`."""


def planning_step(plan: PlanHandler[Any, Any]) -> PayloadHandler[Any]:
    """The plan as a job's handler: the chunks as a result a run can store."""

    async def planned(job: BaseModel, ctx: JobContext) -> dict[str, Any]:
        chunks = await plan(job, ctx)
        return {"chunks": [chunk.model_dump(mode="json") for chunk in chunks]}

    planned.__name__ = f"{plan.__name__}_plan"
    planned.__doc__ = f"The plan of {plan.__name__}: its chunks."
    return planned


def fanned_out(
    planned: PayloadHandler[Any], chunk: PayloadHandler[Any], chunk_model: type[BaseModel]
) -> Callable[[BaseModel, Flow], Steps]:
    """The workflow: the plan, then every chunk side by side, then their results in order."""

    def fan_out(job: BaseModel, flow: Flow) -> Steps:
        plan = yield flow.step(planned, job, name="plan")
        chunks = [chunk_model.model_validate(data) for data in plan["chunks"]]
        results = yield flow.all(
            [flow.step(chunk, part, name=f"chunk {n}") for n, part in enumerate(chunks)]
        )
        return {"chunks": len(results), "results": results}

    return fan_out
