import signal
import subprocess
import sys
from pathlib import Path

from tests.e2e.deployment import Ports, RunningWorker
from tests.e2e.faults import FaultInjector


def test_a_process_that_outlasts_its_grace_is_killed_and_reaped(tmp_path: Path) -> None:
    """A restarted app whose shutdown outlasts the grace is SIGKILLed, and reaped: a Popen
    collected unreaped fails whichever test runs at that moment (ResourceWarning)."""
    worker = RunningWorker(
        app_id="worker-unit",
        ports=Ports(app=1, http=2, grpc=3, metrics=4),
        instances=1,
        database="unused",
        run_file=tmp_path / "run.yaml",
        log_file=tmp_path / "worker.log",
        namespace="unit",
    )
    faults = FaultInjector(worker, tmp_path / "restarted.log")
    ignores_sigterm = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    stubborn = subprocess.Popen(
        [sys.executable, "-c", ignores_sigterm],
        start_new_session=True,
        stdout=subprocess.PIPE,
    )
    assert stubborn.stdout is not None
    assert stubborn.stdout.readline().strip() == b"ready"  # its SIGTERM handler is in place
    faults.restarted.append(stubborn)

    faults.stop_all(grace_seconds=0.5)

    assert stubborn.returncode == -signal.SIGKILL
    stubborn.stdout.close()
