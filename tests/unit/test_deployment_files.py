"""The run files and manifests agree with each other and with the code."""

from pathlib import Path
from typing import Any

import yaml

from app.core.config import Settings
from app.main import create_app
from app.workers.registry import registry
from stack.scale import scaled_run_file
from tests.support import DEVELOPMENT

ROOT = Path(__file__).resolve().parents[2]


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_kubernetes_has_every_local_component_and_resiliency_policy() -> None:
    kinds = {"Component", "Resiliency"}
    local = {
        (doc["kind"], doc["metadata"]["name"])
        for f in (ROOT / "components").glob("*.yaml")
        for doc in _documents(f)
        if doc["kind"] in kinds
    }
    cluster_documents = [
        doc
        for name in ("dapr-components.yaml", "cron-bindings.yaml")
        for doc in _documents(ROOT / "deploy" / "kubernetes" / name)
    ]
    cluster = {
        (doc["kind"], doc["metadata"]["name"]) for doc in cluster_documents if doc["kind"] in kinds
    }

    assert local == cluster
    (local_policy,) = _documents(ROOT / "components" / "resiliency.yaml")
    (cluster_policy,) = [doc for doc in cluster_documents if doc["kind"] == "Resiliency"]
    assert local_policy["spec"] == cluster_policy["spec"]


def test_delivery_to_the_app_is_retried_for_as_long_as_it_fails() -> None:
    (policy,) = _documents(ROOT / "components" / "resiliency.yaml")
    inbound = policy["spec"]["targets"]["components"]["pubsub"]["inbound"]
    retry = policy["spec"]["policies"]["retries"][inbound["retry"]]

    # daprd acknowledges a message whose retries are spent; exponential stops after 15 min.
    assert retry["maxRetries"] == -1
    assert retry["policy"] == "constant"
    # An open breaker ends the retry loop, and the message is acknowledged.
    assert "circuitBreaker" not in inbound


def test_every_cron_binding_component_fires_a_registered_job_on_its_schedule() -> None:
    create_app(Settings(App=DEVELOPMENT))  # imports the built-in workers
    for path in (ROOT / "components").glob("*.yaml"):
        (component,) = _documents(path)
        if component["kind"] != "Component" or component["spec"]["type"] != "bindings.cron":
            continue
        name = component["metadata"]["name"]
        worker = registry.by_binding(name)
        assert worker is not None, f"{path.name}: no job is bound to {name}"
        schedule = {m["name"]: m["value"] for m in component["spec"]["metadata"]}["schedule"]
        assert worker.schedule is not None
        assert worker.schedule.expression == schedule, f"{name}: component and job disagree"


def test_the_scaled_run_file_gives_each_instance_its_own_ports_and_name() -> None:
    spec = scaled_run_file(
        instances=3,
        app_id="worker",
        app_port=8000,
        http_port=3500,
        grpc_port=50101,
        metrics_port=9190,
        env={},
        extra_resources=[],
    )

    apps = spec["apps"]
    assert [app["appID"] for app in apps] == ["worker"] * 3
    for field in ("appPort", "daprHTTPPort", "daprGRPCPort", "metricsPort"):
        assert len({app[field] for app in apps}) == 3, field
    assert [app["env"]["App__InstanceId"] for app in apps] == ["worker-1", "worker-2", "worker-3"]
    assert [app["command"][-1] for app in apps] == ["8000", "8001", "8002"]


def test_kubernetes_checks_app_health_as_the_local_run_file_does() -> None:
    (app,) = yaml.safe_load((ROOT / "dapr.yaml").read_text())["apps"]
    (deployment,) = [
        doc
        for doc in _documents(ROOT / "deploy" / "kubernetes" / "worker.yaml")
        if doc["kind"] == "Deployment"
    ]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]

    assert annotations["dapr.io/enable-app-health-check"] == "true"
    assert annotations["dapr.io/app-health-check-path"] == app["appHealthCheckPath"]
    assert int(annotations["dapr.io/app-health-probe-interval"]) == app["appHealthProbeInterval"]
    assert int(annotations["dapr.io/app-health-probe-timeout"]) == app["appHealthProbeTimeout"]
    assert int(annotations["dapr.io/app-health-threshold"]) == app["appHealthThreshold"]


def test_the_kafka_pubsub_is_the_same_component_locally_and_on_kubernetes() -> None:
    (local,) = _documents(ROOT / "components" / "kafka" / "pubsub.yaml")
    (cluster,) = _documents(ROOT / "deploy" / "kubernetes" / "pubsub-kafka.yaml")
    (redis,) = [
        doc
        for doc in _documents(ROOT / "deploy" / "kubernetes" / "dapr-components.yaml")
        if doc["metadata"]["name"] == "pubsub"
    ]

    assert local["metadata"]["name"] == cluster["metadata"]["name"] == redis["metadata"]["name"]
    assert local["spec"]["type"] == cluster["spec"]["type"] == "pubsub.kafka"
    settings = {
        "initialOffset",
        "consumeRetryEnabled",
        "backOffPolicy",
        "backOffDuration",
        "backOffMaxRetries",
        "sessionTimeout",
        "heartbeatInterval",
    }

    def of(component: dict[str, Any]) -> dict[str, str]:
        pairs = {item["name"]: item.get("value") for item in component["spec"]["metadata"]}
        return {name: value for name, value in pairs.items() if name in settings}

    assert of(local) == of(cluster)
    assert set(of(local)) == settings


def test_on_kafka_a_failed_delivery_never_lets_its_partition_move_past_it() -> None:
    """components-contrib's Kafka consumer, without its own retry, goes on to a partition's next
    message after a failed one, and marking that one commits past the failure (a loss the fault
    suite found on Kafka). With its retry, a failure on a closed session ends the loop unmarked,
    and any other is retried without end."""
    (component,) = _documents(ROOT / "components" / "kafka" / "pubsub.yaml")
    settings = {item["name"]: item["value"] for item in component["spec"]["metadata"]}

    assert settings["consumeRetryEnabled"] == "true"
    assert settings["backOffPolicy"] == "constant"
    assert settings["backOffMaxRetries"] == "-1"
