"""The delivery journal's file: what a process that died leaves is read back (a last line cut
short by the death included), and a long-running process's file is compacted to the entries
in flight."""

from pathlib import Path

import pytest

from app.dispatch import delivery_journal
from app.dispatch.delivery_journal import DeliveryJournal, JournalEntry


def entry(n: int) -> JournalEntry:
    return JournalEntry(
        run_id=f"run-{n}",
        job="job",
        event_id=f"event-{n}",
        topic="topic",
        payload={"n": n, "text": "a\nb"},
        begun_at="2026-12-07T04:00:00+00:00",
        instance="i-1",
    )


def test_what_a_dead_process_left_is_read_back(tmp_path: Path) -> None:
    journal = DeliveryJournal(tmp_path / "j.journal")
    journal.open()
    for n in range(4):
        journal.begun(entry(n))
    journal.ended("run-1")
    journal.ended("run-3")
    journal.close()
    with (tmp_path / "j.journal").open("a") as cut:
        cut.write('+["run-9", "job"')  # the death cut this line short

    assert DeliveryJournal(tmp_path / "j.journal").left() == [entry(0), entry(2)]


def test_a_fresh_journal_forgets_what_was_recorded(tmp_path: Path) -> None:
    journal = DeliveryJournal(tmp_path / "j.journal")
    journal.open()
    journal.begun(entry(0))
    journal.close()
    again = DeliveryJournal(tmp_path / "j.journal")
    assert again.left() == [entry(0)]
    again.open()
    again.close()
    assert DeliveryJournal(tmp_path / "j.journal").left() == []


def test_a_long_journal_is_compacted_to_the_entries_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery_journal, "_COMPACT_AFTER_LINES", 10)
    journal = DeliveryJournal(tmp_path / "j.journal")
    journal.open()
    journal.begun(entry(100))
    for n in range(20):
        journal.begun(entry(n))
        journal.ended(f"run-{n}")
    journal.begun(entry(101))
    lines = (tmp_path / "j.journal").read_text().splitlines()
    assert len(lines) < 10
    journal.close()
    assert DeliveryJournal(tmp_path / "j.journal").left() == [entry(100), entry(101)]


def test_a_graceful_stop_with_nothing_in_flight_leaves_nothing_behind(tmp_path: Path) -> None:
    journal = DeliveryJournal.at(str(tmp_path), database="db_of_a_test", instance_id="i")
    journal.open()
    journal.begun(entry(0))
    journal.ended("run-0")
    journal.close()

    assert list(tmp_path.iterdir()) == []
