"""`make up` on a stack that is up already leaves it alone and says which database server
answers: it named the Python server while the Rust one was running (2026-12-02)."""

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = Path(os.environ.get("STATE_DIR", ROOT / ".state"))


def running_database_command() -> list[str]:
    pidfile = STATE_DIR / "pids" / "secantusdb.pid"
    if not pidfile.exists():
        pytest.skip("the database was not started by this stack (MONGODB_URI names another)")
    try:
        raw = Path(f"/proc/{pidfile.read_text().strip()}/cmdline").read_bytes()
    except FileNotFoundError:
        pytest.skip("the database this stack started is no longer running")
    return [Path(part).name for part in raw.decode().split("\0") if part]


def test_up_on_a_running_stack_names_the_database_server_that_runs() -> None:
    running = running_database_command()
    done = subprocess.run(
        ["bash", str(ROOT / "stack" / "up.sh")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert "secantusdb: already up" in done.stderr
    reported = re.search(r"mongodb :\d+ \(([^)]+)\)", done.stderr)
    assert reported is not None, done.stderr
    assert reported.group(1) in running, (reported.group(1), running)
