"""A run in flight on this instance: why it was told to stop, and when its attempt times out.

The executor never cancels its own bookkeeping. Whoever wants a run to stop (an operator's
cancel, the lease keeper that lost the lease or saw a cancel request, a shutdown) calls `stop`;
the executor sees it wherever the run is (waiting for its slot, or in its handler), cancels
only the handler's task, and records the outcome that fits the reason.
"""

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum

from app.models.runs import JobRun


@dataclass
class Storage:
    """Whether a run in flight is in MongoDB yet.

    A run is stored before its attempt, except the first attempt of a delivered event: its
    unacknowledged message is its claim, and its run is written once, as the attempt ended (or
    as running, leased, once it outlives a third of its lease: long runs stay visible and
    cancellable). The lock keeps that write and the one that ends the attempt apart."""

    stored: bool = True
    dedupe_key: str | None = None
    """The occurrence the run is written under, while it is not stored."""
    recorded: bool = True
    """The occurrence has a run in MongoDB (this one, or another instance's)."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def unstored(cls, dedupe_key: str) -> "Storage":
        return cls(stored=False, dedupe_key=dedupe_key, recorded=False)


class StopReason(StrEnum):
    CANCELLED = "cancelled"  # an operator cancelled the run
    DRAINING = "draining"  # this instance is shutting down: hand the run back
    LEASE_LOST = "lease_lost"  # another instance took the run over: write nothing


@dataclass
class Flight:
    run: JobRun
    timeout_seconds: float | None
    storage: Storage = field(default_factory=Storage)
    reason: StopReason | None = None
    stopped: "asyncio.Future[StopReason]" = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    """Done once `stop` was called: a future, so that waiting on it takes no task of its own."""
    _deadline: float | None = None

    def stop(self, reason: StopReason) -> None:
        """The first reason wins: a run cancelled by an operator stays cancelled on shutdown."""
        if self.reason is None:
            self.reason = reason
            self.stopped.set_result(reason)

    def start_clock(self) -> None:
        """The attempt's handler starts now: its timeout counts from here."""
        self.progressed()

    def progressed(self) -> None:
        """A data processor finished a chunk: its timeout is per chunk."""
        if self.timeout_seconds is not None:
            self._deadline = asyncio.get_running_loop().time() + self.timeout_seconds

    def remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - asyncio.get_running_loop().time())
