"""When the drive of a workflow run takes its instance for stalled (and reconnects the
workflow worker): only when every step ended a while ago and the instance never moved since."""

from datetime import UTC, datetime, timedelta

from app.workflows.host import instance_stalled

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_steps_that_ended_long_ago_and_an_instance_that_never_moved_since_are_a_stall() -> None:
    ended = NOW - timedelta(seconds=45)
    assert instance_stalled(moved_at=ended - timedelta(seconds=1), steps_settled_at=ended, now=NOW)


def test_an_instance_waiting_for_a_timer_or_an_event_after_its_steps_moved_after_them() -> None:
    ended = NOW - timedelta(minutes=10)
    moved = ended + timedelta(milliseconds=40)  # it took the result in and set its timer
    assert not instance_stalled(moved_at=moved, steps_settled_at=ended, now=NOW)


def test_a_step_still_running_or_none_yet_is_no_stall() -> None:
    long_ago = NOW - timedelta(hours=1)
    assert not instance_stalled(moved_at=long_ago, steps_settled_at=None, now=NOW)


def test_steps_that_ended_just_now_are_given_time() -> None:
    ended = NOW - timedelta(seconds=5)
    assert not instance_stalled(
        moved_at=ended - timedelta(seconds=1), steps_settled_at=ended, now=NOW
    )
