"""The actor SDK's JSON decoder makes datetimes of date-like strings read back from the state
store; the actors' state must read the same either way (found by the fault suite on Kafka: a
TickCoordinator that moved could no longer keep a missed tick, `'<' not supported between
instances of 'datetime.datetime' and 'str'`, nor forget one it had caught up)."""

from datetime import UTC, datetime, timedelta
from typing import Any

from dapr.serializers import DefaultJSONSerializer

from app.actors.state_values import as_moment, as_text
from app.actors.tick_coordinator import kept_entries

_SDK = DefaultJSONSerializer()


def _read_back(value: Any) -> Any:
    """What the actor SDK hands an actor of a value it stored (or a request it was sent)."""
    return _SDK.deserialize(_SDK.serialize(value))


def test_kept_ticks_read_back_sort_with_a_new_one_and_are_forgotten_by_the_requests_form() -> None:
    ticks = ["2026-12-07T07:33:20+00:00", "2026-12-07T07:33:21+00:00"]
    firing = '{"fired_at": "2026-12-07T07:33:20+00:00", "schedule": "nightly"}'
    stored = _read_back([*ticks, firing])
    assert isinstance(stored[0], datetime)  # what the decoder does

    kept = kept_entries(stored)
    kept.add(as_text(_read_back({"tick": "2026-12-07T07:33:22+00:00"})["tick"]))
    in_order = sorted(kept)

    assert len(in_order) == 4
    forgotten = {as_text(tick) for tick in _read_back({"ticks": ticks})["ticks"]}
    assert kept - forgotten == {as_text("2026-12-07T07:33:22+00:00"), firing}


def test_a_date_like_string_and_the_datetime_made_of_it_read_alike() -> None:
    text = "2026-12-07T07:33:20+00:00"

    assert as_text(text) == as_text(_read_back(text)) == as_text(_read_back([text])[0])
    assert as_text("worker-faults-1") == "worker-faults-1"


def test_a_lease_expiry_read_back_is_a_moment() -> None:
    expires = datetime.now(UTC) + timedelta(seconds=30)

    read_back = _read_back({"expires_at": expires.isoformat()})["expires_at"]

    assert abs(as_moment(read_back) - expires) < timedelta(milliseconds=1)
    assert as_moment(expires.isoformat()) == expires
