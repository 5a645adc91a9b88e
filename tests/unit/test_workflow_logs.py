"""The workflow SDK logs through the app's logging (one JSON object per line in production),
not through stream handlers of its own: the container's log check found its plain-text lines
among the JSON ones (2026-12-02)."""

import logging
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from app.core.config import Settings
from app.repositories.runs import RunRepository
from app.workers.registry import Registry
from app.workflows.host import WorkflowHost


@pytest.mark.parametrize(
    "name", ["WorkflowRuntime", "DaprWorkflowClient", "durabletask-worker", "durabletask-client"]
)
def test_the_sdks_loggers_write_nothing_of_their_own(
    name: str, capfd: pytest.CaptureFixture[str]
) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient("mongodb://127.0.0.1:1")
    WorkflowHost(registry=Registry(), settings=Settings(), runs=RunRepository(client["unused"]))
    logging.getLogger(name).warning("a line from the SDK")

    captured = capfd.readouterr()
    assert f"{name} WARNING: a line from the SDK" not in captured.err + captured.out, (
        logging.getLogger(name).handlers
    )
