"""Every socket the stack and the app listen on is on loopback, read from `ss`.

Two exceptions, both Dapr 1.18's: placement and scheduler parse `--healthz-listen-address` but
never pass it to their health server (pkg/healthz/server has no address option), so their
health ports listen on every interface. The test names them, so that a new one fails it.
"""

import os
import re
import subprocess

import pytest

from tests.e2e.deployment import RunningWorker, _pids_listening
from tests.e2e.faults import stack_pid

pytestmark = pytest.mark.e2e

LOOPBACK = {"127.0.0.1", "[::1]", "::1"}
HEALTH_PORTS_DAPR_CANNOT_BIND = {
    "placement": int(os.environ.get("PLACEMENT_HEALTH_PORT", "58081")),
    "scheduler": int(os.environ.get("SCHEDULER_HEALTH_PORT", "58082")),
}


def listening_sockets() -> list[tuple[int, str, int]]:
    """(pid, address, port) of every TCP socket in LISTEN."""
    listing = subprocess.run(["ss", "-Htlnp"], capture_output=True, text=True, check=True).stdout
    sockets = []
    for line in listing.splitlines():
        fields = line.split()
        address, _, port = fields[3].rpartition(":")
        sockets += [(int(pid), address, int(port)) for pid in re.findall(r"pid=(\d+)", line)]
    return sockets


def test_the_stack_and_the_app_listen_on_loopback_only(worker: RunningWorker) -> None:
    ours = {
        **{stack_pid(name): name for name in ("redis", "secantusdb", "placement", "scheduler")},
        **dict.fromkeys(_pids_listening(worker.app_port(0)), "app"),
        **dict.fromkeys(_pids_listening(worker.ports.http), "daprd"),
    }

    outside = {
        (ours[pid], port)
        for pid, address, port in listening_sockets()
        if pid in ours and address not in LOOPBACK
    }

    assert {name for name, _ in outside} <= set(HEALTH_PORTS_DAPR_CANNOT_BIND), outside
    assert outside <= set(HEALTH_PORTS_DAPR_CANNOT_BIND.items())
    assert any(name == "daprd" for name in ours.values())
