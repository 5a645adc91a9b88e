"""What a worker's author touches: one import, and built-in workers found by package scan."""

import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import BaseModel

import app.workers
import app.workers.builtin
from app.workers import GiveUp, JobContext, RetryLater, RunCancelled, registry
from app.workers.context import JobContext as ContextItself
from app.workers.registry import RegistrationError, Registry
from app.workers.registry import registry as registry_itself

BUILTIN = Path(app.workers.builtin.__file__).parent
REPO = Path(__file__).parents[2]


class Order(BaseModel):
    order_id: str


def test_one_import_gives_what_a_worker_needs() -> None:
    assert registry is registry_itself
    assert JobContext is ContextItself
    assert issubclass(RetryLater, Exception)
    assert issubclass(GiveUp, Exception)
    assert issubclass(RunCancelled, Exception)
    assert set(app.workers.__all__) >= {"registry", "JobContext", "RetryLater", "GiveUp"}


def test_every_module_in_builtin_is_loaded_without_being_named() -> None:
    modules = {
        f"app.workers.builtin.{p.stem}" for p in BUILTIN.glob("*.py") if p.stem != "__init__"
    }
    registered = {worker.handler.__module__ for worker in registry}
    assert modules <= registered


CHECKED_WORKERS = """
from typing import Any

from pydantic import BaseModel

from app.workers import BatchContext, JobContext, registry


class OrderPlaced(BaseModel):
    order_id: str


@registry.event_handler(topic="orders", payload=OrderPlaced)
async def fits(order: OrderPlaced, ctx: JobContext) -> dict[str, Any]:
    return {"order": order.order_id}


@registry.scheduled(cron="@every 1m")
async def nightly(ctx: JobContext) -> None:
    return None


@registry.batch_handler(topic="bulk", payload=OrderPlaced)
async def bulk(orders: list[OrderPlaced], ctx: BatchContext) -> None:
    return None


@registry.event_handler(topic="more-orders", payload=OrderPlaced)
async def only_ctx(ctx: JobContext) -> None:  # line 28: no payload parameter
    return None


@registry.manual(payload=OrderPlaced)
async def wrong_payload(order: int, ctx: JobContext) -> None:  # line 33: not an OrderPlaced
    return None


@registry.integration()
async def wants_a_payload(order: OrderPlaced, ctx: JobContext) -> None:  # line 38: none given
    return None
"""


def test_mypy_rejects_a_handler_that_does_not_take_its_payload(tmp_path: Path) -> None:
    source = tmp_path / "checked_workers.py"
    source.write_text(CHECKED_WORKERS)

    # In a process of its own: mypy raises the interpreter's recursion limit for good.
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", "--no-error-summary",
         str(source)],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    report, status = checked.stdout, checked.returncode

    errors = sorted(int(line.split(":")[1]) for line in report.splitlines() if ": error:" in line)
    assert status == 1, report
    assert errors == [28, 33, 38], report


def test_a_handler_that_cannot_take_its_payload_is_refused_at_registration() -> None:
    local = Registry()

    async def only_ctx(ctx: JobContext) -> None:
        return None

    async def payload_and_ctx(item: Any, ctx: JobContext) -> None:
        return None

    async def no_parameters() -> None:
        return None

    register_any = cast(Any, local)
    with pytest.raises(RegistrationError, match=r"must take \(item: Order, ctx: JobContext\)"):
        register_any.event_handler(topic="orders", payload=Order)(only_ctx)
    with pytest.raises(RegistrationError, match=r"must take \(ctx: JobContext\)"):
        register_any.manual()(payload_and_ctx)
    with pytest.raises(RegistrationError, match=r"must take \(items: list\[Payload\]"):
        register_any.batch_handler(topic="bulk", payload=Order)(no_parameters)
    assert len(local) == 0


def test_a_manual_job_has_no_trigger_of_its_own() -> None:
    local = Registry()

    @local.manual(payload=Order, name="rebuild", max_attempts=2)
    async def rebuild(order: Order, ctx: JobContext) -> None:
        return None

    worker = local.get("rebuild")
    assert worker is not None
    assert (worker.kind, worker.trigger, worker.binding, worker.schedule) == (
        "manual",
        None,
        None,
        None,
    )
    assert worker.max_attempts == 2
