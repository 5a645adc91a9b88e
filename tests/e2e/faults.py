"""Faults for the e2e fault suite: kill and restart an instance's app or daprd, freeze and
restart the database, restart Redis, and publish steadily while it happens.

A process is restarted from what /proc says of it (command line, environment, working folder),
as Kubernetes restarts a container with the same spec. The Dapr CLI leaves a daprd running
when its app dies, and the app when its daprd dies, so either can be killed on its own.
"""

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pymongo.errors import ConnectionFailure
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from tests.e2e.deployment import ROOT, RunningWorker, _pids_listening
from tests.support import eventually, eventually_sync, item_event

STATE_DIR = Path(os.environ.get("STATE_DIR", ROOT / ".state"))


@dataclass(frozen=True)
class ProcessImage:
    """What it takes to start a process again as it was."""

    argv: list[str]
    env: dict[str, str]
    cwd: str

    @classmethod
    def of(cls, pid: int) -> "ProcessImage":
        proc = Path(f"/proc/{pid}")
        argv = proc.joinpath("cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        pairs = proc.joinpath("environ").read_bytes().rstrip(b"\0").split(b"\0")
        env = dict(pair.decode().split("=", 1) for pair in pairs if b"=" in pair)
        return cls([a.decode() for a in argv], env, os.readlink(proc / "cwd"))


_WARNINGS = ("level=warning", "level=error", '"level": "WARNING"', '"level": "ERROR"')


@dataclass
class FaultInjector:
    """Kills and restarts the processes of one deployment and of the local stack."""

    worker: RunningWorker
    log_file: Path
    restarted: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def kill_app(self, n: int) -> ProcessImage:
        return self._kill(self.worker.app_port(n))

    def failure_report(self, lines: int = 40) -> str:
        """The warnings and errors of the processes this started again (apps and daprd)."""
        if not self.log_file.exists():
            return ""
        noted = [
            line
            for line in self.log_file.read_text(errors="replace").splitlines()
            if any(mark in line for mark in _WARNINGS)
        ]
        heading = f"--- {self.log_file} (warnings and errors, last {lines})"
        return "\n".join([heading, *noted[-lines:]])

    def kill_sidecar(self, n: int) -> ProcessImage:
        return self._kill(self.worker.ports.http + n)

    def restart(self, image: ProcessImage, *, port: int) -> None:
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                image.argv,
                env=image.env,
                cwd=image.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.restarted.append(process)
        eventually_sync(lambda: _answers(port), within=90, what=f"port {port} to answer")

    def restart_app(self, image: ProcessImage, n: int) -> None:
        self.restart(image, port=self.worker.app_port(n))

    def restart_sidecar(self, image: ProcessImage, n: int) -> None:
        self.restart(image, port=self.worker.ports.http + n)

    def stop_all(self, grace_seconds: float = 20) -> None:
        for process in self.restarted:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.restarted:
            try:
                process.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                # Reaped, or its Popen is collected still "running" later, and pytest fails
                # whichever test is running then (CI: an app whose shutdown outlasted 20 s on
                # a busy machine failed the poison test, another an integration test).
                process.wait(timeout=20)

    def _kill(self, port: int) -> ProcessImage:
        (pid,) = _pids_listening(port)
        image = ProcessImage.of(pid)
        os.kill(pid, signal.SIGKILL)
        eventually_sync(lambda: not _pids_listening(port), within=15, what=f"{port} closed")
        return image


def stack_pid(name: str) -> int:
    return int((STATE_DIR / "pids" / f"{name}.pid").read_text())


def signal_stack_service(name: str, sig: signal.Signals) -> None:
    os.kill(stack_pid(name), sig)


def restart_stack_service(name: str, *, down_for: float = 0) -> None:
    """Stops a service of the local stack, leaves it down `down_for` seconds (the fault's
    duration), and starts it again through stack/up.sh."""
    pid = stack_pid(name)
    os.kill(pid, signal.SIGTERM)
    eventually_sync(lambda: not Path(f"/proc/{pid}").exists(), within=30, what=f"{name} to stop")
    time.sleep(down_for)
    subprocess.run([str(ROOT / "stack" / "up.sh")], check=True, capture_output=True)


def _answers(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
    except httpx.TransportError:
        return False
    return True


def work_item_event(item_id: str) -> dict[str, Any]:
    return item_event(item_id, source="fault-suite")


class _NoSidecarTook(Exception):
    """Every sidecar refused a publish, or did not answer it."""


@dataclass
class SteadyPublisher:
    """Publishes CloudEvents with ids of our own at a fixed rate, round robin over the
    instances' sidecars. A sidecar that fails or is slow to answer (its app restarting, its
    Redis connections used up) is left out for a few seconds, so that one sick sidecar does not
    slow the traffic. An event counts as published once a sidecar accepted it; a publish whose
    answer was lost is sent again, the same event (its id and `time`), so that the count of
    effects per id stays exact."""

    worker: RunningWorker
    topic: str
    rate_per_second: float
    prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    event_of: Callable[[str], dict[str, Any]] = work_item_event
    """The CloudEvent of one id."""
    published: list[str] = field(default_factory=list)
    failed_attempts: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _resting_until: dict[int, float] = field(default_factory=dict)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        interval = 1 / self.rate_per_second
        next_at = time.monotonic()
        async with httpx.AsyncClient(timeout=2) as http:
            n = 0
            while not self._stop.is_set():
                item_id = f"{self.prefix}-{n:05d}"
                await self._publish(http, item_id, n)
                n += 1
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    def _sidecars_from(self, n: int) -> list[int]:
        """The instances to try, in turn from n; those resting last."""
        order = [(n + k) % self.worker.instances for k in range(self.worker.instances)]
        now = time.monotonic()
        return sorted(order, key=lambda i: self._resting_until.get(i, 0.0) > now)

    async def _publish(self, http: httpx.AsyncClient, item_id: str, n: int) -> None:
        """Through any sidecar; when every sidecar failed (the broker itself is restarting),
        again after a quarter second, 20 rounds at most."""
        event = self.event_of(item_id)
        rounds = AsyncRetrying(
            stop=stop_after_attempt(20),
            wait=wait_fixed(0.25),
            retry=retry_if_exception_type(_NoSidecarTook),
            reraise=True,
        )
        try:
            async for attempt in rounds:
                with attempt:
                    first = n + attempt.retry_state.attempt_number - 1
                    await self._publish_once(http, event, first)
        except _NoSidecarTook:
            raise AssertionError(f"no sidecar took event {item_id}") from None
        self.published.append(item_id)

    async def _publish_once(self, http: httpx.AsyncClient, event: dict[str, Any], n: int) -> None:
        for instance in self._sidecars_from(n):
            sidecar = self.worker.sidecar_url_of(instance)
            try:
                response = await http.post(
                    f"{sidecar}/v1.0/publish/pubsub/{self.topic}",
                    json=event,
                    headers={"content-type": "application/cloudevents+json"},
                )
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 204:
                return
            self.failed_attempts += 1
            self._resting_until[instance] = time.monotonic() + 5
        raise _NoSidecarTook


AppliedCount = Callable[["SteadyPublisher", list[str]], Awaitable[int]]
"""How many of these ids, published by this publisher, are applied."""


async def until_applied_again(
    publishers: Sequence[SteadyPublisher], applied: AppliedCount, *, what: str, within: float
) -> None:
    """Until three events each publisher sends from now on are applied: the traffic flows again
    after a fault (a few may be held a while by a dead instance's broker client, so not the
    first three)."""
    marks = [len(publisher.published) for publisher in publishers]

    async def flowing() -> bool:
        for publisher, mark in zip(publishers, marks, strict=True):
            since = publisher.published[mark:]
            try:
                if len(since) < 3 or await applied(publisher, since) < 3:
                    return False
            except ConnectionFailure:  # the database restarting: asked again
                return False
        return True

    await eventually(flowing, within=within, interval=0.5, what=what)
