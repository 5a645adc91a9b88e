from datetime import UTC, datetime

import pytest

from app.dapr.bindings import fired_at


def test_the_cron_bindings_firing_time_is_read_to_the_microsecond() -> None:
    written = {"readTimeUTC": "2026-12-07 07:10:27.802645096 +0000 UTC"}

    assert fired_at(written) == datetime(2026, 12, 7, 7, 10, 27, 802645, tzinfo=UTC)


def test_a_firing_on_the_second_has_no_fraction_written() -> None:
    written = {"readTimeUTC": "2026-12-07 07:10:27 +0000 UTC"}

    assert fired_at(written) == datetime(2026, 12, 7, 7, 10, 27, tzinfo=UTC)


@pytest.mark.parametrize(
    "written",
    [
        {},
        {"readTimeUTC": ""},
        {"readTimeUTC": "yesterday"},
        {"readTimeUTC": "2026-13-07 07:10:27 +0000 UTC"},
    ],
)
def test_no_firing_time_or_an_unreadable_one_is_none(written: dict[str, str]) -> None:
    assert fired_at(written) is None
