"""The registry of workers: each is an async function registered by a decorator at import time.

Registration validates early (a coroutine function, a unique name, a trigger) so that a mistake
stops the app at start-up with a message that says what to fix, not at 3 a.m.
"""

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from app.models.runs import WorkerKind
from app.workers.context import JobContext

Handler = Callable[..., Awaitable[dict[str, Any] | None]]


class RegistrationError(Exception):
    """A worker cannot be registered as written; the message says how to fix it."""


@dataclass(frozen=True)
class Worker:
    name: str
    kind: WorkerKind
    handler: Handler
    payload_model: type[BaseModel] | None = None
    topic: str | None = None
    pubsub: str | None = None
    binding: str | None = None

    @property
    def trigger(self) -> str:
        return self.topic or self.binding or ""


class Registry:
    def __init__(self) -> None:
        self._workers: dict[str, Worker] = {}

    def __iter__(self) -> Any:
        return iter(self._workers.values())

    def get(self, name: str) -> Worker | None:
        return self._workers.get(name)

    def by_topic(self, pubsub: str, topic: str) -> Worker | None:
        return next(
            (w for w in self._workers.values() if w.pubsub == pubsub and w.topic == topic), None
        )

    def by_binding(self, binding: str) -> Worker | None:
        return next((w for w in self._workers.values() if w.binding == binding), None)

    def add(self, worker: Worker) -> None:
        if not inspect.iscoroutinefunction(worker.handler):
            raise RegistrationError(
                f"worker {worker.name!r}: {worker.handler.__qualname__} must be an `async def`"
            )
        if worker.name in self._workers:
            raise RegistrationError(
                f"worker {worker.name!r} is registered twice; give one of them another `name=`"
            )
        if worker.topic and self.by_topic(worker.pubsub or "", worker.topic):
            raise RegistrationError(
                f"worker {worker.name!r}: topic {worker.topic!r} already has a handler"
            )
        if worker.binding and self.by_binding(worker.binding):
            raise RegistrationError(
                f"worker {worker.name!r}: binding {worker.binding!r} already has a job"
            )
        self._workers[worker.name] = worker

    def scheduled(self, *, binding: str, name: str | None = None) -> Callable[[Handler], Handler]:
        """A scheduled job, fired by the Dapr cron input binding named `binding`."""

        def register(handler: Handler) -> Handler:
            self.add(Worker(name or handler.__name__, "scheduled", handler, binding=binding))
            return handler

        return register

    def event_handler(
        self,
        *,
        topic: str,
        payload: type[BaseModel],
        pubsub: str = "pubsub",
        name: str | None = None,
    ) -> Callable[[Handler], Handler]:
        """A handler of the CloudEvents on `topic`; each event's data is validated as `payload`."""

        def register(handler: Handler) -> Handler:
            self.add(
                Worker(
                    name or handler.__name__,
                    "event",
                    handler,
                    payload_model=payload,
                    topic=topic,
                    pubsub=pubsub,
                )
            )
            return handler

        return register


registry = Registry()
"""The registry the built-in workers (`app.workers.builtin`) register in."""

__all__ = ["Handler", "JobContext", "RegistrationError", "Registry", "Worker", "registry"]
