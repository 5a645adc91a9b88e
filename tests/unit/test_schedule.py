from datetime import UTC, datetime, timedelta

import pytest

from app.models.schedules import JobSchedule
from app.workers.schedule import InvalidSchedule, Schedule


@pytest.mark.parametrize(
    ("expression", "fired", "tick"),
    [
        ("@every 2s", "2026-01-01T10:00:03.900", "2026-01-01T10:00:02"),
        ("@every 2s", "2026-01-01T10:00:04.000", "2026-01-01T10:00:04"),
        ("@every 1m30s", "2026-01-01T10:01:29", "2026-01-01T10:00:00"),
        ("*/5 * * * *", "2026-01-01T10:07:59", "2026-01-01T10:05:00"),
        ("0 5 0 * * *", "2026-01-02T00:05:00.200", "2026-01-02T00:05:00"),
        ("*/10 * * * * *", "2026-01-01T10:00:19.999", "2026-01-01T10:00:10"),
        ("@daily", "2026-01-01T23:59:00", "2026-01-01T00:00:00"),
    ],
)
def test_every_firing_in_a_period_names_the_same_tick(
    expression: str, fired: str, tick: str
) -> None:
    fired_at = datetime.fromisoformat(fired).replace(tzinfo=UTC)

    assert Schedule.parse(expression).tick_of(fired_at) == datetime.fromisoformat(tick).replace(
        tzinfo=UTC
    )


@pytest.mark.parametrize(
    "expression", ["every 2s", "@every", "@every 0s", "* * *", "61 * * * *", ""]
)
def test_what_is_not_a_schedule_is_refused_with_examples(expression: str) -> None:
    with pytest.raises(InvalidSchedule, match="|".join(["not a schedule", "positive"])):
        Schedule.parse(expression)


def test_the_jobs_api_takes_six_fields_but_not_five() -> None:
    assert Schedule.parse("0 */5 * * * *", dapr_jobs=True).expression == "0 */5 * * * *"
    assert Schedule.parse("@every 2s", dapr_jobs=True).expression == "@every 2s"
    with pytest.raises(InvalidSchedule, match="six-field"):
        Schedule.parse("*/5 * * * *", dapr_jobs=True)


def test_a_jobs_api_firing_maps_onto_its_schedules_grid() -> None:
    created = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    every_minute = JobSchedule(
        name="n", job="j", cron="0 * * * * *", due_time=None, payload=None, created_at=created
    )
    one_off = JobSchedule(
        name="o", job="j", cron=None, due_time=created, payload=None, created_at=created
    )
    fired = datetime(2026, 11, 29, 12, 7, 0, 350_000, tzinfo=UTC)
    redelivered = fired + timedelta(seconds=20)

    assert every_minute.occurrence_of(fired) == datetime(2026, 11, 29, 12, 7, tzinfo=UTC)
    assert every_minute.occurrence_of(redelivered) == every_minute.occurrence_of(fired)
    assert one_off.occurrence_of(redelivered) == created


def test_an_every_schedules_firings_keep_their_own_occurrences_when_late() -> None:
    # The Jobs API's scheduler fires `@every` at its start plus whole periods, not on the epoch's
    # grid: created at .95 of a second, one firing 60 ms late and the next 30 ms late fall on
    # either side of a whole second. Each is still its own occurrence.
    asked = datetime(2026, 11, 29, 12, 0, 0, 950_000, tzinfo=UTC)
    every_second = JobSchedule(
        name="e",
        job="j",
        cron="@every 1s",
        due_time=None,
        payload=None,
        created_at=asked,
        anchored_at=asked,
    )
    started = asked + timedelta(milliseconds=4)  # the scheduler's clock when it took the job
    firings = [started + timedelta(seconds=k) for k in range(1, 6)]
    late = [timedelta(milliseconds=ms) for ms in (60, 30, 800, 0, 45)]

    occurrences = [
        every_second.occurrence_of(fired + lateness)
        for fired, lateness in zip(firings, late, strict=True)
    ]

    assert len(set(occurrences)) == len(firings)
    assert every_second.occurrence_of(firings[1] + timedelta(milliseconds=300)) == occurrences[1]


def test_the_next_fire_follows_the_grid_of_each_kind_of_schedule() -> None:
    now = datetime(2026, 12, 1, 10, 0, 7, 500_000, tzinfo=UTC)
    assert Schedule.parse("0 */5 * * * *").next_after(now) == now.replace(
        minute=5, second=0, microsecond=0
    )
    assert Schedule.parse("*/15 * * * *").next_after(now) == now.replace(
        minute=15, second=0, microsecond=0
    )
    assert Schedule.parse("@every 2s").next_after(now) == now.replace(second=8, microsecond=0)
    anchor = datetime(2026, 12, 1, 10, 0, 0, 300_000, tzinfo=UTC)
    assert Schedule.parse("@every 2s").next_after(now, anchor=anchor) == anchor.replace(second=8)
    assert Schedule.parse("@daily").next_after(now) == datetime(2026, 12, 2, tzinfo=UTC)


def test_the_ticks_of_a_range_follow_the_grid_both_ends_included() -> None:
    every = Schedule.parse("@every 2s")
    start = datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)

    assert every.ticks_between(start, start + timedelta(seconds=7), most=10) == [
        start + timedelta(seconds=s) for s in (1, 3, 5, 7)
    ]
    daily = Schedule.parse("0 0 6 * * *")
    six = datetime(2026, 1, 1, 6, tzinfo=UTC)
    assert daily.ticks_between(six, six + timedelta(days=2), most=10) == [
        six + timedelta(days=d) for d in (0, 1, 2)
    ]
    assert len(Schedule.parse("@every 1s").ticks_between(six, six + timedelta(days=1), most=5)) == 6
    assert every.ticks_between(
        start + timedelta(seconds=1), start + timedelta(seconds=1), most=3
    ) == [start + timedelta(seconds=1)]
