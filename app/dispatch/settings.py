"""The run engine's settings, as the dispatcher, executor and poller need them."""

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineSettings:
    lease_seconds: float = 15.0
    poll_interval_seconds: float = 0.5
    max_in_flight: int = 32
    shutdown_grace_seconds: float = 10.0
