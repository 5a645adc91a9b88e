"""An operator's verb on a workflow instance answers within a bound when the sidecar's workflow
API does not: a 503 to try again, not a request that hangs. Seen in CI (2026-12-07): right after
placement, the scheduler, Redis and the database were restarted, raising an approval through the
API waited past the operator client's 30 s, while the sidecar placed the workflow actors again
("dissemination timeout")."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from app.core.config import DaprSection, Settings
from app.repositories.runs import RunRepository
from app.workers.registry import Registry
from app.workflows.host import OPERATOR_VERB_SECONDS, WorkflowApiAway, WorkflowHost


@contextlib.asynccontextmanager
async def sidecar_that_never_answers() -> AsyncIterator[int]:
    """A port that takes the gRPC connection and never says a word (its port)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()


# Every operator verb goes through the same bound; terminating (an operator's cancel) did not
# go through the refusals at all.
VERBS: dict[str, Callable[[WorkflowHost], Awaitable[Any]]] = {
    "raise an event": lambda host: host.raise_event("run-1", "approval", {"by": "ops"}),
    "terminate": lambda host: host.terminate("run-1"),
}


@pytest.mark.parametrize("verb", list(VERBS))
async def test_a_verb_the_sidecar_does_not_answer_is_a_503_within_its_bound(verb: str) -> None:
    async with sidecar_that_never_answers() as port:
        settings = Settings()
        dapr = settings.dapr.model_copy(update={"grpc_port": port})
        assert isinstance(dapr, DaprSection)
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient("mongodb://127.0.0.1:1")
        host = WorkflowHost(
            registry=Registry(),
            settings=settings.model_copy(update={"dapr": dapr}),
            runs=RunRepository(mongo["unused"]),
        )
        with pytest.raises(WorkflowApiAway) as refused:
            # The bound of the test only keeps a hang from hanging the suite.
            await asyncio.wait_for(VERBS[verb](host), timeout=OPERATOR_VERB_SECONDS + 20)

    assert "did not answer within" in str(refused.value)
    assert "run-1" in str(refused.value)
