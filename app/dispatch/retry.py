"""Exponential backoff with jitter between the attempts of a run."""

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    base_seconds: float = 1.0
    max_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_seconds < 0 or self.max_seconds < self.base_seconds:
            raise ValueError("need 0 <= base_seconds <= max_seconds")

    def gives_up_after(self, attempt: int) -> bool:
        return attempt >= self.max_attempts

    def delay_after(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based).

        "Equal jitter": a random point in the upper half of the exponential ceiling. The jitter
        spreads the retries of runs that failed together, so that they do not hit a recovering
        dependency at once; the lower bound keeps a real pause between attempts.
        """
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** (attempt - 1))
        return (rng or random).uniform(ceiling / 2, ceiling)
