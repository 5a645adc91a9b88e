"""The container image, built here (`make image`: buildah, on a Debian 12 base made with
debootstrap when python:3.11-slim is not at hand) and run under podman as the app of a
`dapr run`: host network, read-only root filesystem, a non-root user, no capabilities, with a
daprd on the host as its sidecar."""

import json
import os
import subprocess
import time
import tomllib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import yaml
from bson import ObjectId
from pymongo import AsyncMongoClient

from app.db.mongo import Database, Document
from tests.e2e.customers import progress_reaching, seed_customers
from tests.e2e.deployment import (
    ROOT,
    Ports,
    RunningWorker,
    database_of,
    prepare_worker,
    started,
)
from tests.support import eventually, eventually_sync, unique_database

pytestmark = pytest.mark.e2e

IMAGE_PORTS = Ports(app=18800, http=14300, grpc=15801, metrics=19890)
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"localhost/aevatar-worker:{VERSION}"
CONTAINER = "aevatar-worker-e2e"
GRACE_SECONDS = 3
APP_TOKEN = "image-app-s3cret"


# The project's podman settings (stack/containers.conf), for every podman this module starts.
os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "stack" / "containers.conf"))


def podman(*args: str) -> str:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def image() -> dict[str, Any]:
    """`make image` (its layers cached: seconds when nothing changed); the image's config."""
    subprocess.run([str(ROOT / "stack" / "image.sh")], check=True, cwd=ROOT)
    inspected: list[dict[str, Any]] = json.loads(podman("image", "inspect", IMAGE))
    return inspected[0]


def container_command(port: int, passed: list[str]) -> list[str]:
    """The app of the run file: the image under podman, the environment the CLI gives its app
    passed in by name."""
    return [
        "podman", "run", "--rm", "--name", CONTAINER, "--network", "host",
        "--read-only", "--tmpfs", "/tmp", "--user", "10001:10001", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "--stop-timeout", "30",
        # podman schedules the image's HEALTHCHECK with systemd, which these machines do not
        # run: the test runs its command itself.
        "--no-healthcheck",
        *(f"--env={name}" for name in passed),
        "--env=APP_HOST=127.0.0.1", f"--env=APP_PORT={port}",
        IMAGE,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def contained(
    image: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningWorker]:
    subprocess.run(["podman", "rm", "--force", "--ignore", CONTAINER], check=True)
    env = {
        # The image holds the service alone: no test workers.
        "Worker__Modules": "[]",
        "Worker__ShutdownGraceSeconds": str(GRACE_SECONDS),
        # As deployed: production, with the operator token (the run file's) and daprd's.
        "App__Environment": "Production",
    }
    deployment = prepare_worker(
        tmp_path_factory.mktemp("image"),
        app_id="worker-image",
        ports=IMAGE_PORTS,
        database=unique_database("aevatar_image"),
        env=env,
        # The CLI hands APP_API_TOKEN to daprd (which sends it) and to the app.
        cli_env={"APP_API_TOKEN": APP_TOKEN},
    )
    spec = yaml.safe_load(deployment.run_file.read_text())
    (app,) = spec["apps"]
    passed = [*app["env"], "DAPR_HTTP_PORT", "DAPR_GRPC_PORT", "APP_API_TOKEN"]
    app["command"] = container_command(IMAGE_PORTS.app, passed)
    deployment.run_file.write_text(yaml.safe_dump(spec))
    with started(deployment) as running:
        yield running
    subprocess.run(["podman", "rm", "--force", "--ignore", CONTAINER], check=True)


@pytest.fixture(scope="module")
async def image_db(
    contained: RunningWorker, mongo: AsyncMongoClient[dict[str, Any]]
) -> AsyncIterator[Database]:
    async with database_of(contained, mongo) as db:
        yield db


def test_the_image_is_small_has_no_compiler_nor_caches_and_says_what_it_is(
    image: dict[str, Any],
) -> None:
    assert image["Size"] < 200_000_000, f"{image['Size'] / 1e6:.0f} MB"
    config = image["Config"]
    assert config["User"] == "10001:10001"
    assert "8000/tcp" in config["ExposedPorts"]
    assert "/healthz" in " ".join(image["Healthcheck"]["Test"])
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == VERSION
    revision = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.strip()
    assert labels["org.opencontainers.image.revision"] == revision
    assert labels["org.opencontainers.image.source"] not in ("", "unknown")
    inside = podman(
        "run", "--rm", "--network", "none", "--entrypoint", "sh", IMAGE, "-c",
        "for c in gcc cc c++ make apt-get; do command -v $c; done;"
        " ls /var/cache/apt/archives /root/.cache /srv/.cache 2>/dev/null | grep -c . || true",
    )  # fmt: skip
    lines = inside.split()
    assert lines[-1] == "0", f"caches in the image: {inside}"
    assert [line for line in lines[:-1] if not line.endswith("apt-get")] == [], inside


def test_the_image_started_without_tokens_refuses_to_start_and_names_them(
    image: dict[str, Any],
) -> None:
    """The image as a newcomer would deploy it: no token, no settings at all."""
    image_env = dict(item.split("=", 1) for item in image["Config"]["Env"])
    assert image_env["App__Environment"] == "Production"
    done = subprocess.run(
        ["podman", "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", IMAGE],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    said = done.stdout + done.stderr
    assert done.returncode != 0, said
    assert "refusing to start in environment 'Production'" in said
    assert "APP_API_TOKEN" in said
    assert "Api:OperatorToken" in said
    assert "worker started" not in said


async def test_the_container_answers_its_probes_beside_its_sidecar(
    contained: RunningWorker, image: dict[str, Any]
) -> None:
    async with httpx.AsyncClient(base_url=contained.app_url, timeout=10) as http:
        assert (await http.get("/healthz")).json()["status"] == "ok"
        ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text
    check = image["Healthcheck"]["Test"]
    assert check[0] == "CMD"
    podman("exec", CONTAINER, *check[1:])  # the image's HEALTHCHECK: raises unless healthy
    state = json.loads(podman("inspect", "--format", "{{json .State}}", CONTAINER))
    assert state["Running"] is True
    config = json.loads(podman("inspect", "--format", "{{json .HostConfig}}", CONTAINER))
    assert config["ReadonlyRootfs"] is True
    assert config["CapDrop"] or config["CapAdd"] == []


async def test_an_event_is_applied_and_a_cron_tick_runs(
    contained: RunningWorker, image_db: Database
) -> None:
    order = f"img-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=contained.sidecar_url, timeout=10) as sidecar:
        published = await sidecar.post(
            "/v1.0/publish/pubsub/domain-events", json={"orderId": order}
        )
    assert published.status_code == 204, published.text

    async def stored() -> Document | None:
        return await image_db["domain_events"].find_one({"data.orderId": order})

    await eventually(stored, what="the event stored by the container")

    async def ticked() -> Document | None:
        return await image_db["job_runs"].find_one(
            {"job": "heartbeat", "trigger.type": "cron", "status": "succeeded"}
        )

    await eventually(ticked, within=30, what="a heartbeat cron tick run by the container")


async def test_sigterm_drains_within_the_grace_period_and_logs_are_json(
    contained: RunningWorker, image_db: Database
) -> None:
    await seed_customers(image_db, 60)
    async with contained.api() as api:
        response = await api.post(
            "/api/jobs/recompute_customer_summaries/trigger",
            json={"payload": {"chunk_size": 5, "pause_ms": 1500}},
        )
        run_id = response.json()["run_id"]
        await progress_reaching(api, run_id, 5)

    sent = time.monotonic()
    podman("kill", "--signal", "TERM", CONTAINER)

    def gone() -> bool:
        listed = subprocess.run(
            ["podman", "container", "exists", CONTAINER], capture_output=True, check=False
        )
        return listed.returncode != 0

    eventually_sync(gone, within=GRACE_SECONDS + 15, interval=0.1, what="the container to exit")
    took = time.monotonic() - sent
    assert took < GRACE_SECONDS + 8, f"{took:.1f} s"

    run = await image_db["job_runs"].find_one({"_id": ObjectId(run_id)})
    assert run is not None
    # Handed back to the queue (no lease) for another instance: not left running.
    assert run["status"] == "pending", run["status"]
    assert "lease_until" not in run

    lines = [
        line.partition("== APP - worker-image == ")[2]
        for line in contained.log_file.read_text(errors="replace").splitlines()
        if "== APP - worker-image == " in line
    ]
    assert len(lines) > 3
    records = [json.loads(line) for line in lines]  # one JSON object per line, each of them
    messages = [record["message"] for record in records]
    assert "draining in-flight runs" in messages
    assert "worker stopped" in messages


def test_the_deployment_matches_the_image(image: dict[str, Any]) -> None:
    """deploy/kubernetes/worker.yaml against the image it runs: port, user, probes' paths."""
    documents = list(yaml.safe_load_all((ROOT / "deploy/kubernetes/worker.yaml").read_text()))
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    config = image["Config"]
    exposed = {int(port.split("/")[0]) for port in config["ExposedPorts"]}
    assert {p["containerPort"] for p in container["ports"]} == exposed
    assert pod["metadata"]["annotations"]["dapr.io/app-port"] == str(exposed.pop())
    user, group = (int(part) for part in config["User"].split(":"))
    security = pod["spec"]["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"]) == (user, group)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["image"].endswith(f":{VERSION}")
    # A read-only root: the image writes its bytecode cache under /tmp, a volume in the pod.
    image_env = dict(item.split("=", 1) for item in config["Env"])
    assert image_env["PYTHONPYCACHEPREFIX"].startswith("/tmp/")
    mounted = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounted["/tmp"]]
    paths = {
        container["livenessProbe"]["httpGet"]["path"],
        container["readinessProbe"]["httpGet"]["path"],
    }
    assert paths == {"/healthz", "/readyz"}
    assert pod["metadata"]["annotations"]["dapr.io/app-health-check-path"] == "/healthz"
    env = {item["name"] for item in container["env"]}
    assert image_env["Serilog__Format"] == "json"
    assert env <= {
        "App__InstanceId",
        "ConnectionStrings__Default",
        "Api__OperatorToken",
        "Serilog__Format",
    }
