"""CPU time of processes, read from /proc (psutil): what a benchmark spends per event."""

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

STATE_DIR = Path(os.environ.get("STATE_DIR", Path(__file__).resolve().parents[1] / ".state"))


def database_pid() -> int:
    """The stack's database server, or the one BENCH_DATABASE_PID names (a record pass on a
    server of the benchmark's own)."""
    named = os.environ.get("BENCH_DATABASE_PID")
    return int(named) if named else int((STATE_DIR / "pids" / "secantusdb.pid").read_text())


def tree_cpu_seconds(pids: Iterable[int]) -> float:
    """User plus system CPU of the processes and all their children, as of now."""
    total = 0.0
    for pid in pids:
        try:
            process = psutil.Process(pid)
            for member in [process, *process.children(recursive=True)]:
                times = member.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


@dataclass
class CpuMeter:
    """CPU seconds spent by named groups of processes between `start` and `stop`."""

    groups: dict[str, list[int]]
    _before: dict[str, float] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self._before = {name: tree_cpu_seconds(pids) for name, pids in self.groups.items()}

    def stop(self) -> None:
        self.spent = {
            name: tree_cpu_seconds(pids) - self._before[name] for name, pids in self.groups.items()
        }

    def ms_per_event(self, events: int) -> dict[str, float]:
        return {name: round(seconds * 1000 / events, 3) for name, seconds in self.spent.items()}


def resident_mb(pid: int) -> float:
    """A process's resident set, in MB."""
    return round(psutil.Process(pid).memory_info().rss / 1_000_000, 1)
