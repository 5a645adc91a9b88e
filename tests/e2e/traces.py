"""What the fault suite keeps to explain an event it lost: every command Redis took (MONITOR,
which names the connection of each XACK and XCLAIM), and, per missing event, the lines of the
apps', daprds' and Redis' records that mention it or its stream entry.

A loss seen in CI (an entry acknowledged with no run and no effect, 2026-12-07) could not be
traced from the log tails a failure printed; these are kept for the next one.
"""

import contextlib
import os
import subprocess
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path


class RedisMonitor:
    """Records `MONITOR` of the stack's Redis into a file, from `start` to `stop`; a Redis
    restart ends a monitor, so a new one is started until `stop`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stopping = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._record, name="redis-monitor", daemon=True)

    def start(self) -> "RedisMonitor":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                self._process.terminate()
        self._thread.join(timeout=10)

    def _record(self) -> None:
        port = os.environ.get("REDIS_PORT", "6379")
        with self.path.open("ab") as out:
            # A monitor that ends (Redis restarted, or not up yet) is started again; the
            # wait between two tries is what keeps a down Redis from being asked in a busy loop.
            while not self._stopping.wait(timeout=0.2):
                self._process = subprocess.Popen(
                    ["redis-cli", "-h", "127.0.0.1", "-p", port, "monitor"],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
                self._process.wait()


@contextlib.contextmanager
def monitoring_redis(path: Path) -> Iterator[RedisMonitor]:
    monitor = RedisMonitor(path).start()
    try:
        yield monitor
    finally:
        monitor.stop()


def mentions(needles: Iterable[str], files: Sequence[Path], *, per_needle: int = 40) -> str:
    """Each needle's lines in the files (the first `per_needle` of them), file by file."""
    wanted = [needle for needle in needles if needle]
    found: dict[str, list[str]] = {needle: [] for needle in wanted}
    for path in files:
        if not path.exists():
            continue
        with path.open(errors="replace") as lines:
            for line in lines:
                for needle in wanted:
                    if needle in line and len(found[needle]) < per_needle:
                        found[needle].append(f"{path.name}: {line.rstrip()[:600]}")
    return "\n".join(
        "\n".join([f"--- {needle}: {len(lines)} line(s)", *lines])
        for needle, lines in found.items()
    )
