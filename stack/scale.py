"""Writes a multi-app run file that runs N instances of the worker, each with its own daprd.

    .venv/bin/python stack/scale.py --instances 3 > .state/dapr.scaled.yaml
    dapr run -f .state/dapr.scaled.yaml          (or: make run-scaled INSTANCES=3)

Every instance is the app of dapr.yaml under the same app id, so they share the work as replicas
of one app do on Kubernetes: one consumer group per topic, actors placed across them, one
scheduler target. Instance i listens on app port base+i, daprd HTTP base+i, gRPC base+i, and is
named `<app-id>-<i>` in the run history. Placement, scheduler, Redis and MongoDB are shared.
"""

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
BROKERS = ("redis", "kafka")
"""What `PUBSUB` may name: the event bus the `pubsub` component runs on (Redis streams unless
told otherwise)."""


def pubsub_of_environment() -> str:
    broker = os.environ.get("PUBSUB") or "redis"
    if broker not in BROKERS:
        raise SystemExit(f"PUBSUB={broker!r}: expected one of {', '.join(BROKERS)}")
    return broker


def components_for(broker: str) -> Path:
    """The folder of components daprd reads: `components/` itself on Redis; on Kafka a copy of
    it under the stack's state folder with `components/kafka/pubsub.yaml` as its `pubsub`
    (two components of one name cannot sit in one folder)."""
    local = ROOT / "components"
    if broker == "redis":
        return local
    folder = Path(os.environ.get("STATE_DIR", ROOT / ".state")) / f"components-{broker}"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.yaml"):
        stale.unlink()
    for component in local.glob("*.yaml"):
        shutil.copy(component, folder / component.name)
    shutil.copy(local / broker / "pubsub.yaml", folder / "pubsub.yaml")
    return folder


def scaled_run_file(
    *,
    instances: int,
    app_id: str,
    app_port: int,
    http_port: int,
    grpc_port: int,
    metrics_port: int,
    env: dict[str, str],
    extra_resources: list[str],
    broker: str = "redis",
) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((ROOT / "dapr.yaml").read_text())
    common = spec["common"]
    # Absolute paths: the file may be written anywhere.
    (components,) = common["resourcesPaths"]
    assert Path(components) == Path("components"), "dapr.yaml reads ./components"
    common["resourcesPaths"] = [str(components_for(broker)), *extra_resources]
    common["configFilePath"] = str(ROOT / common["configFilePath"])
    (template,) = spec["apps"]
    apps = []
    for n in range(instances):
        app = dict(template)
        command = [str(ROOT / template["command"][0]), *template["command"][1:]]
        command[command.index("--port") + 1] = str(app_port + n)
        app.update(
            appID=app_id,
            appDirPath=str(ROOT),
            appPort=app_port + n,
            daprHTTPPort=http_port + n,
            daprGRPCPort=grpc_port + n,
            metricsPort=metrics_port + n,
            command=command,
            env={"App__InstanceId": f"{app_id}-{n + 1}", **template.get("env", {}), **env},
        )
        apps.append(app)
    spec["apps"] = apps
    return spec


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--app-id", default="worker")
    parser.add_argument("--app-port", type=int, default=8000)
    parser.add_argument("--http-port", type=int, default=3500)
    parser.add_argument("--grpc-port", type=int, default=50101)
    parser.add_argument("--metrics-port", type=int, default=9190)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--resources", action="append", default=[], metavar="DIR")
    args = parser.parse_args(argv)
    if args.instances < 1:
        parser.error("--instances must be at least 1")
    env = dict(item.split("=", 1) for item in args.env)
    spec = scaled_run_file(
        instances=args.instances,
        app_id=args.app_id,
        app_port=args.app_port,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        env=env,
        extra_resources=[str(Path(d).resolve()) for d in args.resources],
        broker=pubsub_of_environment(),
    )
    yaml.safe_dump(spec, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main(sys.argv[1:])
