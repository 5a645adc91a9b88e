"""What a worker's author touches: one import, and built-in workers found by package scan."""

from pathlib import Path

import app.workers
import app.workers.builtin
from app.workers import GiveUp, JobContext, RetryLater, RunCancelled, registry
from app.workers.context import JobContext as ContextItself
from app.workers.registry import registry as registry_itself

BUILTIN = Path(app.workers.builtin.__file__).parent


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
