"""The real stack: the worker and its daprd started by the Dapr CLI from the project's dapr.yaml.

`make up` (or `make test`) must have started Redis, the MongoDB-wire server, placement and
scheduler. The run file is the committed dapr.yaml with other ports (so that a `make run` on the
same machine is left alone) and a database of the test session's own.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pymongo import AsyncMongoClient

from app.db.mongo import Database
from tests.support import MONGODB_URI, eventually, unique_database, uri_with_database

ROOT = Path(__file__).resolve().parents[2]
APP_PORT = 18000
DAPR_HTTP_PORT = 13500
DAPR_GRPC_PORT = 15001
METRICS_PORT = 19190


@dataclass(frozen=True)
class RunningWorker:
    app_url: str
    sidecar_url: str
    database: str
    run_file: Path
    log_file: Path

    def app_log_lines(self) -> list[dict[str, Any]]:
        """The app's JSON log lines, as the CLI printed them (`== APP - worker == {...}`)."""
        lines = []
        for line in self.log_file.read_text(errors="replace").splitlines():
            _, marker, rest = line.partition("== APP - worker == ")
            if marker and rest.startswith("{"):
                with contextlib.suppress(ValueError):
                    lines.append(json.loads(rest))
        return lines

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


def dapr_cli() -> str:
    found = shutil.which("dapr") or str(
        Path(os.environ.get("DAPR_RUNTIME_PATH", Path.home())) / ".dapr" / "bin" / "dapr"
    )
    assert Path(found).exists(), "no dapr CLI: run `make up`, which builds it"
    return found


def _run_file(tmp: Path, database: str) -> Path:
    spec: dict[str, Any] = yaml.safe_load((ROOT / "dapr.yaml").read_text())
    common = spec["common"]
    common["resourcesPaths"] = [str(ROOT / path) for path in common["resourcesPaths"]]
    common["configFilePath"] = str(ROOT / common["configFilePath"])
    (app,) = spec["apps"]
    command = [str(ROOT / app["command"][0]), *app["command"][1:]]
    command[command.index("--port") + 1] = str(APP_PORT)
    app.update(
        appDirPath=str(ROOT),
        appPort=APP_PORT,
        daprHTTPPort=DAPR_HTTP_PORT,
        daprGRPCPort=DAPR_GRPC_PORT,
        metricsPort=METRICS_PORT,
        command=command,
        env={
            "ConnectionStrings__Default": uri_with_database(MONGODB_URI, database),
            "Serilog__Format": "json",
        },
    )
    path = tmp / "dapr.e2e.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="session")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    tmp = tmp_path_factory.mktemp("e2e")
    database = unique_database("aevatar_e2e")
    run_file = _run_file(tmp, database)
    log_file = tmp / "dapr-run.log"
    env = {**os.environ, "DAPR_HOST_IP": "127.0.0.1"}
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [dapr_cli(), "run", "-f", str(run_file)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    running = RunningWorker(
        app_url=f"http://127.0.0.1:{APP_PORT}",
        sidecar_url=f"http://127.0.0.1:{DAPR_HTTP_PORT}",
        database=database,
        run_file=run_file,
        log_file=log_file,
    )
    try:
        _wait_until_ready(running, process)
        yield running
    finally:
        _stop(process)


def _wait_until_ready(worker: RunningWorker, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dapr run exited with {process.returncode}:\n{worker.log_tail()}")
        try:
            if httpx.get(f"{worker.app_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"the worker was not ready within 90 s:\n{worker.log_tail()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
async def e2e_db(worker: RunningWorker) -> AsyncIterator[Database]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGODB_URI, tz_aware=True)
    yield client[worker.database]
    await client.drop_database(worker.database)
    await client.close()


__all__ = ["RunningWorker", "dapr_cli", "eventually"]
