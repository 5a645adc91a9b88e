"""Start-up when the sidecar or the database comes later than the app (as on Kubernetes): the
app serves `/healthz` at once, says on `/readyz` what it waits for, waits for MongoDB instead of
exiting, and stops promptly on SIGTERM in every phase. The app runs under uvicorn, as deployed."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support import (
    MONGODB_URI,
    eventually,
    eventually_sync,
    free_port,
    uri_with_database,
)
from tests.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]
# Longer than a prompt stop, shorter than the 10 s after which podman and the kubelet kill.
PROMPT_STOP_SECONDS = 8


class Launched:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    def get(self, path: str) -> httpx.Response:
        assert self.process.poll() is None, "the app exited:\n" + self.log.read_text()[-3000:]
        return httpx.get(self.url + path, timeout=3)

    def phase(self) -> str | None:
        try:
            phase: str = self.get("/healthz").json()["phase"]
        except httpx.TransportError:
            return None
        return phase

    def stop_promptly(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=PROMPT_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"SIGTERM did not stop the app:\n{self.log.read_text()[-3000:]}")
        # uvicorn re-raises the signal it handled once it has shut down cleanly.
        assert code in (0, -signal.SIGTERM), self.log.read_text()[-3000:]


@contextmanager
def launched(tmp_path: Path, **env: str) -> Iterator[Launched]:
    port = free_port()
    log = tmp_path / "app.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
             "--port", str(port)],
            cwd=ROOT,
            env={
                **os.environ,
                "App__Environment": "Development",
                "Worker__Modules": '["tests.workers"]',
                **env,
            },
            stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    app = Launched(process, f"http://127.0.0.1:{port}", log)
    try:
        yield app
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def serving_at_once(app: Launched) -> str:
    return eventually_sync(app.phase, within=30, what="/healthz to answer")


def test_without_its_sidecar_the_app_serves_its_probes_and_what_daprd_reads_first(
    tmp_path: Path, database_name: str
) -> None:
    sidecar_port = str(free_port())  # nothing listens there
    uri = uri_with_database(MONGODB_URI, database_name)
    with launched(tmp_path, Dapr__HttpPort=sidecar_port, ConnectionStrings__Default=uri) as app:
        assert serving_at_once(app) == "starting"
        live = app.get("/healthz")
        assert live.status_code == 200
        assert live.json()["status"] == "ok"
        ready = app.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["waiting_for"] == "the Dapr sidecar"
        # What daprd reads once, when it first reaches the app: served from the first moment.
        config: dict[str, Any] = app.get("/dapr/config").json()
        assert {"RunLease", "TickCoordinator", "KeySequencer"} <= set(config["entities"])
        subscriptions = app.get("/dapr/subscribe").json()
        assert any(s["topic"] == "domain-events" for s in subscriptions)
        # A delivery is handed back to daprd to redeliver; an operator call says why it waits.
        delivered = httpx.post(
            f"{app.url}/events/pubsub/domain-events",
            json={"id": "e1", "source": "t", "type": "t", "specversion": "1.0", "data": {}},
            headers={"content-type": "application/cloudevents+json"},
        )
        assert delivered.json() == {"status": "RETRY"}
        operator = app.get("/api/jobs")
        assert operator.status_code == 503
        assert "waiting for the Dapr sidecar" in operator.json()["detail"]
        eventually_sync(
            lambda: "start-up waits for the Dapr sidecar" in app.log.read_text() or None,
            what="the wait in the log",
        )
        app.stop_promptly()


async def test_without_mongodb_the_app_waits_says_so_and_starts_when_it_comes(
    tmp_path: Path, database_name: str
) -> None:
    target = urlsplit(MONGODB_URI)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 27017)
    proxy.port = free_port()
    uri = uri_with_database(
        f"mongodb://127.0.0.1:{proxy.port}/?retryWrites=false&serverSelectionTimeoutMS=500",
        database_name,
    )
    with launched(
        tmp_path, Dapr__HttpPort="1", Dapr__HostActors="false", ConnectionStrings__Default=uri
    ) as app:
        assert serving_at_once(app) == "starting"

        async def says_it_waits_for_mongodb() -> bool:
            ready = app.get("/readyz")
            return ready.status_code == 503 and ready.json()["waiting_for"] == "MongoDB"

        await eventually(says_it_waits_for_mongodb, what="/readyz to name MongoDB")

        async def waited_twice() -> bool:
            return app.log.read_text().count("start-up waits for MongoDB") >= 2

        await eventually(waited_twice, what="start-up to try MongoDB again, not exit")
        await proxy.start()
        try:

            async def started() -> bool:
                return app.phase() == "started"

            await eventually(started, within=60, what="start-up once MongoDB answers")
            assert app.get("/api/jobs").status_code == 200
            assert "worker started" in app.log.read_text()
        finally:
            await proxy.cut()


def test_sigterm_stops_the_app_while_it_waits_for_mongodb(tmp_path: Path) -> None:
    nowhere = f"mongodb://127.0.0.1:{free_port()}/x?retryWrites=false"
    with launched(
        tmp_path, Dapr__HttpPort="1", Dapr__HostActors="false", ConnectionStrings__Default=nowhere
    ) as app:
        assert serving_at_once(app) == "starting"
        eventually_sync(
            lambda: "start-up waits for MongoDB" in app.log.read_text() or None,
            what="start-up to wait for MongoDB",
        )
        app.stop_promptly()


def test_sigterm_stops_a_started_app_promptly(tmp_path: Path, database_name: str) -> None:
    uri = uri_with_database(MONGODB_URI, database_name)
    with launched(
        tmp_path, Dapr__HttpPort="1", Dapr__HostActors="false", ConnectionStrings__Default=uri
    ) as app:
        eventually_sync(lambda: app.phase() == "started" or None, within=60, what="start-up")
        app.stop_promptly()
        assert "worker stopped" in app.log.read_text()
