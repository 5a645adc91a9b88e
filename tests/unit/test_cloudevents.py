"""The CloudEvent envelope: the lag from the publishing daprd's `time` to a moment."""

from datetime import UTC, datetime

from app.dapr.cloudevents import CloudEvent

NOW = datetime(2026, 12, 1, 10, 0, 1, 500_000, tzinfo=UTC)


def test_the_lag_is_read_from_a_go_timestamp_with_nanoseconds() -> None:
    event = CloudEvent.model_validate({"id": "e", "time": "2026-12-01T10:00:00.123456789Z"})
    assert event.seconds_since_sent(NOW) == 1.376544


def test_no_lag_without_a_readable_zoned_time() -> None:
    assert CloudEvent.model_validate({"id": "e"}).seconds_since_sent(NOW) is None
    for bad in ("yesterday", "2026-12-01T10:00:00", 17):
        assert CloudEvent.model_validate({"id": "e", "time": bad}).seconds_since_sent(NOW) is None
