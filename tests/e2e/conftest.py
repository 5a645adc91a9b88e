"""The real stack: workers and their daprd started by the Dapr CLI from the project's dapr.yaml.

`make up` (or `make test`) must have started Redis, the MongoDB-wire server, placement and
scheduler. Each worker runs from the committed dapr.yaml with other ports (so that a `make run`
on the same machine is left alone), a database of its own, the test workers of
`tests/workers.py` loaded through Worker:Modules, and an operator token.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pymongo import AsyncMongoClient

from app.db.mongo import Database
from stack.scale import scaled_run_file
from tests.partner_api import PartnerApi, PartnerState
from tests.support import MONGODB_URI, unique_database, uri_with_database
from tests.workers import FLAKY_TOPIC, ORDERED_TOPIC, SLOW_QUEUE_TOPIC

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_TOKEN = "e2e-operator-token"


@dataclass(frozen=True)
class Ports:
    """The first instance's ports; instance i adds i to each."""

    app: int
    http: int
    grpc: int
    metrics: int


MAIN_PORTS = Ports(app=18000, http=13500, grpc=15001, metrics=19190)
SPARE_PORTS = Ports(app=18100, http=13600, grpc=15101, metrics=19290)
CLUSTER_PORTS = Ports(app=18200, http=13700, grpc=15201, metrics=19390)


@dataclass
class RunningWorker:
    """One `dapr run -f` of a run file written by stack/scale.py: one or more instances of an
    app, each with its own daprd. The first instance is the default of every helper."""

    app_id: str
    ports: Ports
    instances: int
    database: str
    run_file: Path
    log_file: Path
    # Each test deployment in a Dapr namespace of its own: actor types are unique per namespace,
    # as two apps hosting the same types would share (and fight over) the same actors.
    namespace: str = "default"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def app_port(self, n: int = 0) -> int:
        return self.ports.app + n

    def app_url_of(self, n: int) -> str:
        return f"http://127.0.0.1:{self.ports.app + n}"

    def sidecar_url_of(self, n: int) -> str:
        return f"http://127.0.0.1:{self.ports.http + n}"

    @property
    def app_url(self) -> str:
        return self.app_url_of(0)

    @property
    def sidecar_url(self) -> str:
        return self.sidecar_url_of(0)

    def instance_name(self, n: int) -> str:
        return f"{self.app_id}-{n + 1}"

    def api(self, n: int = 0) -> httpx.AsyncClient:
        """A client of instance n's operator API, with the operator token."""
        return httpx.AsyncClient(
            base_url=self.app_url_of(n),
            headers={"authorization": f"Bearer {OPERATOR_TOKEN}"},
            timeout=30,
        )

    def app_log_lines(self) -> list[dict[str, Any]]:
        """The apps' JSON log lines, as the CLI printed them (`== APP - <id> == {...}`)."""
        lines = []
        for line in self.log_file.read_text(errors="replace").splitlines():
            _, marker, rest = line.partition(f"== APP - {self.app_id} == ")
            if marker and rest.startswith("{"):
                with contextlib.suppress(ValueError):
                    lines.append(json.loads(rest))
        return lines

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def start(self) -> None:
        env = {**os.environ, "DAPR_HOST_IP": "127.0.0.1", "NAMESPACE": self.namespace}
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [dapr_cli(), "run", "-f", str(self.run_file)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        for n in range(self.instances):
            self._wait_until_ready(n)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Signals the CLI, every daprd and app (one process group), and waits for them."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        for n in range(self.instances):
            _wait_port_free(self.ports.app + n)
        self.process = None

    def signal_instance(self, n: int, sig: signal.Signals) -> None:
        """Signals one instance: its app and its daprd, as Kubernetes does a pod's containers."""
        for port in (self.ports.app + n, self.ports.http + n):
            for pid in _pids_listening(port):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)

    def _wait_until_ready(self, n: int) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"dapr run exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                app_ready = httpx.get(f"{self.app_url_of(n)}/readyz", timeout=2).status_code == 200
                # daprd's own health: 204 once it is fully initialised, app channel included.
                sidecar = httpx.get(f"{self.sidecar_url_of(n)}/v1.0/healthz", timeout=2)
                if app_ready and sidecar.status_code == 204:
                    return
            time.sleep(0.25)
        pytest.fail(f"{self.instance_name(n)} was not ready within 90 s:\n{self.log_tail()}")


def _pids_listening(port: int) -> list[int]:
    listing = subprocess.run(
        ["ss", "-Htlnp", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return [int(pid) for pid in re.findall(r"pid=(\d+)", listing)]


def _wait_port_free(port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
        except httpx.TransportError:
            return
        time.sleep(0.1)


def dapr_cli() -> str:
    found = shutil.which("dapr") or str(
        Path(os.environ.get("DAPR_RUNTIME_PATH", Path.home())) / ".dapr" / "bin" / "dapr"
    )
    assert Path(found).exists(), "no dapr CLI: run `make up`, which builds it"
    return found


def prepare_worker(
    tmp: Path,
    *,
    app_id: str,
    ports: Ports,
    database: str,
    env: dict[str, str],
    instances: int = 1,
    resources: list[Path] | None = None,
) -> RunningWorker:
    """The run file of `stack/scale.py` (what `make run-scaled` runs), for the tests."""
    spec = scaled_run_file(
        instances=instances,
        app_id=app_id,
        app_port=ports.app,
        http_port=ports.http,
        grpc_port=ports.grpc,
        metrics_port=ports.metrics,
        env={
            "ConnectionStrings__Default": uri_with_database(MONGODB_URI, database),
            "Serilog__Format": "json",
            "Worker__Modules": '["tests.workers"]',
            "Worker__LeaseSeconds": "3",
            "Worker__PollIntervalSeconds": "0.2",
            "Api__OperatorToken": OPERATOR_TOKEN,
            **env,
        },
        extra_resources=[str(path) for path in resources or []],
    )
    run_file = tmp / f"dapr.{app_id}.yaml"
    run_file.write_text(yaml.safe_dump(spec))
    return RunningWorker(
        app_id=app_id,
        ports=ports,
        instances=instances,
        database=database,
        run_file=run_file,
        log_file=tmp / f"{app_id}.log",
        namespace=f"e2e-{app_id}",
    )


# The topics the e2e tests publish to. Their Redis streams outlive a run, and an app id's
# consumer group would start with every message published since it last ran (by the benchmark,
# say): each e2e session starts from empty streams.
TEST_TOPICS = ["domain-events", "work-items", FLAKY_TOPIC, ORDERED_TOPIC, SLOW_QUEUE_TOPIC]


@pytest.fixture(scope="session", autouse=True)
def empty_test_streams() -> None:
    port = os.environ.get("REDIS_PORT", "6379")
    subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", port, "DEL", *TEST_TOPICS],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def partner() -> Iterator[PartnerApi]:
    api = PartnerApi(PartnerState(fail_every=4))
    api.start()
    yield api
    api.stop()


@pytest.fixture(scope="session")
def worker(
    tmp_path_factory: pytest.TempPathFactory, partner: PartnerApi
) -> Iterator[RunningWorker]:
    running = prepare_worker(
        tmp_path_factory.mktemp("e2e"),
        app_id="worker",
        ports=MAIN_PORTS,
        database=unique_database("aevatar_e2e"),
        env={"DataSync__BaseUrl": partner.url, "DataSync__PageSize": "25"},
    )
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
async def mongo() -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGODB_URI, tz_aware=True)
    yield client
    await client.close()


@pytest.fixture(scope="session")
async def e2e_db(
    worker: RunningWorker, mongo: AsyncMongoClient[dict[str, Any]]
) -> AsyncIterator[Database]:
    yield mongo[worker.database]
    await mongo.drop_database(worker.database)
