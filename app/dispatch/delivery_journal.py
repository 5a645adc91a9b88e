"""The delivery journal: each instance notes, in a local file, the delivered events whose first
attempt it runs before their run is stored (app/dispatch/intake.py), and notes each one's end.
A process that dies mid-attempt (SIGKILL, OOM, a segfault, `os._exit`) leaves its begun and
unended entries behind: when it starts again, each is an attempt that died with it
(app/dispatch/died_attempts.py). So an event whose handler kills its process is counted, and
dead once its attempts are spent, instead of taking every instance down in turn forever.

One line per note, written with one `write` call (no fsync: a process that dies leaves what it
wrote in the page cache; a machine that dies takes every delivery in flight with it, and those
are redelivered and run as if new). The file is rewritten with only the entries in flight when
it grows past a few thousand lines.
"""

import contextlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from loguru import logger

# Lines written before the file is rewritten with the entries in flight alone.
_COMPACT_AFTER_LINES = 20_000


@dataclass(frozen=True)
class JournalEntry:
    run_id: str
    job: str
    event_id: str
    topic: str | None
    payload: Any
    begun_at: str  # ISO 8601
    instance: str

    @property
    def begun(self) -> datetime:
        return datetime.fromisoformat(self.begun_at)

    def line(self) -> str:
        # Its fields by hand: `asdict` copies the payload deeply, which costs more than the rest.
        fields = [self.run_id, self.job, self.event_id, self.topic, self.payload, self.begun_at]
        return "+" + json.dumps([*fields, self.instance], default=str) + "\n"

    @classmethod
    def of_line(cls, line: str) -> "JournalEntry":
        return cls(*json.loads(line[1:]))


class DeliveryJournal:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None
        self._in_flight: dict[str, JournalEntry] = {}
        self._lines = 0

    @classmethod
    def at(cls, directory: str, *, database: str, instance_id: str) -> "DeliveryJournal":
        """The journal of one instance (its stable id, not its pid) on one database."""
        return cls(Path(directory) / database / f"{instance_id}.journal")

    def left(self) -> list[JournalEntry]:
        """The entries an earlier process of this instance begun and never ended: it died
        while running them."""
        try:
            return self._read()
        except OSError as exc:
            logger.bind(path=str(self._path), error=repr(exc)).error("delivery journal unread")
            return []

    def open(self) -> None:
        """Starts this process's journal afresh (what was left is recorded by now). Without a
        writable file the journal is off, and says so: deliveries run as before, uncounted if
        their process dies."""
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
        except OSError as exc:
            logger.bind(path=str(self._path), error=repr(exc)).error(
                "delivery journal unavailable: an event whose handler kills its process will "
                "not be counted (set Worker:JournalDir to a writable directory)"
            )

    def begun(self, entry: JournalEntry) -> None:
        self._in_flight[entry.run_id] = entry
        self._write(entry.line())

    def ended(self, run_id: str) -> None:
        if self._in_flight.pop(run_id, None) is not None:
            self._write(f"-{run_id}\n")

    def close(self) -> None:
        """A graceful stop: with nothing in flight, the file (and its database's folder, once
        empty) goes, so that test databases and stopped instances leave nothing behind."""
        if self._fd is None:
            return
        os.close(self._fd)
        self._fd = None
        if self._in_flight:
            return
        with contextlib.suppress(OSError):
            self._path.unlink()
            self._path.parent.rmdir()

    def _write(self, line: str) -> None:
        if self._fd is None:
            return
        try:
            os.write(self._fd, line.encode())
        except OSError as exc:  # a full disk: the run goes on, uncounted if its process dies
            logger.bind(error=repr(exc)).warning("delivery journal not written")
            return
        self._lines += 1
        if self._lines >= _COMPACT_AFTER_LINES:
            self._compact()

    def _compact(self) -> None:
        """Rewrites the file with the entries in flight alone (atomically: a rename)."""
        assert self._fd is not None
        fresh = self._path.with_suffix(".compacting")
        try:
            fresh.write_text("".join(entry.line() for entry in self._in_flight.values()))
            os.replace(fresh, self._path)
            os.close(self._fd)
            self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            logger.bind(error=repr(exc)).warning("delivery journal not compacted")
        self._lines = len(self._in_flight)

    def _read(self) -> list[JournalEntry]:
        try:
            text = self._path.read_text()
        except FileNotFoundError:
            return []
        begun: dict[str, JournalEntry] = {}
        for line in text.splitlines():
            try:
                if line.startswith("+"):
                    entry = JournalEntry.of_line(line)
                    begun[entry.run_id] = entry
                elif line.startswith("-"):
                    begun.pop(line[1:], None)
            except (ValueError, TypeError):  # the last line, cut short by the death
                logger.bind(line=line[:200]).warning("unreadable delivery journal line skipped")
        return list(begun.values())
