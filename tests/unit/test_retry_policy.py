import random

import pytest

from app.dispatch.retry import RetryPolicy


def test_delays_grow_exponentially_within_their_jitter_band() -> None:
    policy = RetryPolicy(max_attempts=6, base_seconds=1.0, max_seconds=10.0)
    rng = random.Random(1)

    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (6, 10.0)]:
        delays = [policy.delay_after(attempt, rng) for _ in range(200)]
        assert min(delays) >= ceiling / 2
        assert max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling / 4, "jittered, not constant"


def test_gives_up_after_the_last_attempt() -> None:
    policy = RetryPolicy(max_attempts=3)

    assert [policy.gives_up_after(n) for n in (1, 2, 3)] == [False, False, True]


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"base_seconds": -1}, {"base_seconds": 5, "max_seconds": 1}]
)
def test_nonsense_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
