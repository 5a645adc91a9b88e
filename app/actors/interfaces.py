"""The actor interfaces: what each actor type answers, by the method names daprd routes."""

from abc import abstractmethod
from typing import Any

from dapr.actor import ActorInterface, actormethod

TICK_COORDINATOR = "TickCoordinator"
RUN_LEASE = "RunLease"
KEY_SEQUENCER = "KeySequencer"
FLOW_GATE = "FlowGate"


class TickCoordinatorInterface(ActorInterface):
    """One per scheduled job (actor id: the job name), and one that keeps the Jobs API's
    firings no instance could store (app/dispatch/missed_ticks.py)."""

    @actormethod(name="Claim")  # type: ignore[untyped-decorator]
    @abstractmethod
    async def claim(self, request: dict[str, Any]) -> dict[str, Any]:
        """`{"tick", "instance"}` → `{"granted", "holder"}`: the first instance to claim a tick
        holds it; every other instance that claims the same tick is refused."""
        ...

    @actormethod(name="Keep")  # type: ignore[untyped-decorator]
    @abstractmethod
    async def keep(self, request: dict[str, Any]) -> dict[str, Any]:
        """`{"tick"}` → `{"kept"}`: remembers a tick no instance could store (the database
        away), until `Forget`; `kept` counts the ticks remembered now."""
        ...

    @actormethod(name="Missed")  # type: ignore[untyped-decorator]
    @abstractmethod
    async def missed(self, request: dict[str, Any]) -> dict[str, Any]:
        """`{}` → `{"ticks"}`: the ticks kept and not forgotten yet, oldest first."""
        ...

    @actormethod(name="Forget")  # type: ignore[untyped-decorator]
    @abstractmethod
    async def forget(self, request: dict[str, Any]) -> dict[str, Any]:
        """`{"ticks"}` → `{"left"}`: these kept ticks are stored (or skipped) now."""
        ...


class RunLeaseInterface(ActorInterface):
    """One per running data processor run (actor id: the run id)."""

    @actormethod(name="Acquire")  # type: ignore[untyped-decorator]
    @abstractmethod
    async def acquire(self, request: dict[str, Any]) -> dict[str, Any]:
        """`{"instance", "ttl_seconds"}` → `{"granted", "holder", "expires_at"}`: granted when
        the lease is free, expired, or already this instance's (then it is renewed)."""
        ...

    @actormethod(name="Release")  # type: ignore[untyped-decorator]
    @abstractmethod
    async def release(self, request: dict[str, Any]) -> dict[str, Any]:
        """`{"instance"}` → `{"released"}`: frees the lease if this instance holds it."""
        ...


class KeySequencerInterface(ActorInterface):
    """One per (job, key) (actor id: `<job>|<key>`): the runs of one key, one at a time."""

    @actormethod(name="Run")  # type: ignore[untyped-decorator]
    @abstractmethod
    async def run(self, request: dict[str, Any]) -> dict[str, Any]:
        """`{"run_id"}` → `{"status"}`: executes the run on the instance hosting this actor,
        within the actor's turn, so no other run of the same key executes meanwhile."""
        ...


class FlowGateInterface(ActorInterface):
    """One per limited job, or per (job, key value) with `concurrency_key` (actor id: the job
    name, or `<job>|<value>`): how many of its runs run at once, and how many started lately,
    across all instances."""

    @actormethod(name="Pass")  # type: ignore[untyped-decorator]
    @abstractmethod
    async def pass_(self, request: dict[str, Any]) -> dict[str, Any]:
        """`{"leave": [run_id], "renew": [run_id], "enter": [run_id], "max_running",
        "rate_count", "rate_period_seconds", "ttl_seconds"}` → `{"entered": {run_id:
        {"granted", "reason", "retry_after_seconds"}}, "running"}`: the runs that left free
        their places, the running ones keep theirs, then each run that asks to enter, in turn,
        is granted a place (and a start of the rate) or refused with the reason and when to ask
        again. A run that holds a place already is granted again."""
        ...
