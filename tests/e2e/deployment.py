"""Deployments of the worker on the real stack: `dapr run -f` of the run file `stack/scale.py`
writes (what `make run-scaled` runs), with one or more instances, each with its own daprd.

Used by the e2e tests and by the benchmark. `make up` must have started the stack.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from pymongo import AsyncMongoClient

from app.dapr.dead_letters import DEAD_LETTER_TOPIC
from app.db.mongo import Database
from stack.scale import pubsub_of_environment, scaled_run_file
from tests.e2e import kafka
from tests.support import MONGODB_URI, eventually_sync, uri_with_database
from tests.tallies import PLAIN_TOPIC, TRANSACTIONAL_TOPIC
from tests.workers import (
    BATCH_TOPIC,
    BULK_WORK_QUEUE,
    FLAKY_TOPIC,
    KEYED_TOPIC,
    ORDERED_TOPIC,
    PAUSABLE_TOPIC,
    SLOW_QUEUE_TOPIC,
    WORKFLOW_TOPIC,
)

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
    # The CLI's own environment, which each daprd (and app) inherits; the run file's `env`
    # reaches the apps only.
    cli_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    started_at: float = field(default=0.0, repr=False)

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

    def sidecar_logs(self) -> list[Path]:
        """The daprd logs the CLI wrote (under `.dapr/logs`) since this deployment started."""
        logs = sorted(ROOT.glob(f".dapr/logs/{self.app_id}_daprd_*.log"))
        return [log for log in logs if log.stat().st_mtime >= self.started_at]

    def failure_report(self, lines: int = 40) -> str:
        """What a failed test shows of the deployment: the apps' last lines, each daprd's
        warnings and errors."""
        parts = [f"--- {self.log_file} (last {lines} lines)", self.log_tail(lines)]
        for log in self.sidecar_logs():
            noted = [
                line
                for line in log.read_text(errors="replace").splitlines()
                if "level=warning" in line or "level=error" in line
            ]
            parts += [f"--- {log} (warnings and errors, last {lines})", *noted[-lines:]]
        return "\n".join(parts)

    def start(self) -> None:
        self.started_at = time.time()
        env = {
            **os.environ,
            "DAPR_HOST_IP": "127.0.0.1",
            "NAMESPACE": self.namespace,
            **self.cli_env,
        }
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
        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"dapr run exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                app = httpx.get(f"{self.app_url_of(n)}/readyz", timeout=2)
                # daprd's own health: 204 once it is fully initialised, app channel included.
                sidecar = httpx.get(f"{self.sidecar_url_of(n)}/v1.0/healthz", timeout=2)
            except httpx.TransportError:
                return False
            return app.status_code == 200 and sidecar.status_code == 204

        eventually_sync(ready, within=90, interval=0.25, what=f"{self.instance_name(n)} ready")


def _pids_listening(port: int) -> list[int]:
    listing = subprocess.run(
        ["ss", "-Htlnp", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return [int(pid) for pid in re.findall(r"pid=(\d+)", listing)]


def _wait_port_free(port: int) -> None:
    def free() -> bool:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
        except httpx.TransportError:
            return True
        return False

    eventually_sync(free, within=15, what=f"port {port} to be free")


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
    cli_env: dict[str, str] | None = None,
    broker: str | None = None,
) -> RunningWorker:
    """The run file of `stack/scale.py` (what `make run-scaled` runs), for the tests; its
    `pubsub` on `broker` (by default, what PUBSUB names)."""
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
        broker=broker or pubsub_of_environment(),
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
        cli_env=cli_env or {},
    )


def cron_binding(directory: Path, name: str, schedule: str, *, scope: str | None = None) -> Path:
    """Writes a cron input binding component of that name into `directory` (made if need be),
    for the app `scope` alone when given; the directory, to pass as `resources`."""
    directory.mkdir(parents=True, exist_ok=True)
    component: dict[str, Any] = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name},
        "spec": {
            "type": "bindings.cron",
            "version": "v1",
            "metadata": [
                {"name": "schedule", "value": schedule},
                {"name": "direction", "value": "input"},
            ],
        },
    }
    if scope is not None:
        component["scopes"] = [scope]
    (directory / f"{name}.yaml").write_text(yaml.safe_dump(component))
    return directory


@contextlib.contextmanager
def started(worker: RunningWorker) -> Iterator[RunningWorker]:
    """The deployment started and, whatever happens, stopped."""
    try:
        worker.start()
        yield worker
    finally:
        worker.stop()


@contextlib.asynccontextmanager
async def database_of(
    worker: RunningWorker, mongo: AsyncMongoClient[dict[str, Any]]
) -> AsyncIterator[Database]:
    """The deployment's database, dropped afterwards."""
    try:
        yield mongo[worker.database]
    finally:
        await mongo.drop_database(worker.database)


@contextlib.contextmanager
def running_cluster(
    tmp: Path, *, app_id: str, ports: Ports, database: str, instances: int = 3
) -> Iterator[RunningWorker]:
    """Several instances with the e2e components (the one-second cron of `scale_tick`) and a
    short shutdown grace, started and, whatever happens, stopped. In a Dapr namespace of its
    own run: workflow instances an earlier run left in the actor state store stay there."""
    worker = prepare_worker(
        tmp,
        app_id=app_id,
        ports=ports,
        database=database,
        instances=instances,
        env={"Worker__ShutdownGraceSeconds": "2"},
        resources=[Path(__file__).parent / "components"],
    )
    worker.namespace = f"e2e-{app_id}-{uuid.uuid4().hex[:8]}"
    with started(worker) as running:
        yield running


# The topics the e2e tests publish to, and the dead-letter topic. Their Redis streams outlive
# a run (Redis keeps an append-only file), and an app id's consumer group would start with every
# message published since it last ran (by the benchmark, say): each e2e session starts from
# empty streams, and so does each module after the fault suite.
TEST_TOPICS = [
    "domain-events",
    "work-items",
    FLAKY_TOPIC,
    ORDERED_TOPIC,
    KEYED_TOPIC,
    SLOW_QUEUE_TOPIC,
    BATCH_TOPIC,
    BULK_WORK_QUEUE,
    DEAD_LETTER_TOPIC,
    WORKFLOW_TOPIC,
    TRANSACTIONAL_TOPIC,
    PLAIN_TOPIC,
    PAUSABLE_TOPIC,
]


def empty_streams(topics: list[str] | None = None, *, broker: str | None = None) -> None:
    """Deletes the topics' Redis streams (on Kafka, their messages). A new consumer group reads
    a stream from its start: what an earlier run published would be delivered again."""
    if (broker or pubsub_of_environment()) == "kafka":
        kafka.truncate(topics or TEST_TOPICS)
        return
    redis_cli("DEL", *(topics or TEST_TOPICS), check=True)


def redis_cli(*command: str, check: bool = False) -> str:
    """A command to the stack's Redis; its answer as redis-cli prints it."""
    port = os.environ.get("REDIS_PORT", "6379")
    done = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", port, *command],
        check=check,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def unacknowledged(topic: str, app_id: str) -> int:
    """How many messages of a topic's stream the app's consumer group holds unacknowledged."""
    answer = redis_cli("XPENDING", topic, app_id).splitlines()
    return int(answer[0]) if answer and answer[0].isdigit() else 0
