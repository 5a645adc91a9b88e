from pathlib import Path

import pytest
import yaml

from stack.scale import ROOT, components_for, pubsub_of_environment, scaled_run_file


def _pubsub_type(folder: Path) -> str:
    component = yaml.safe_load((folder / "pubsub.yaml").read_text())
    return str(component["spec"]["type"])


def test_on_redis_daprd_reads_the_components_folder_itself() -> None:
    assert components_for("redis") == ROOT / "components"
    assert _pubsub_type(components_for("redis")) == "pubsub.redis"


def test_on_kafka_the_pubsub_component_is_kafkas_and_the_others_are_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATE_DIR", str(tmp_path))
    (tmp_path / "components-kafka").mkdir()
    (tmp_path / "components-kafka" / "retired-cron.yaml").write_text("stale: true\n")

    folder = components_for("kafka")

    assert _pubsub_type(folder) == "pubsub.kafka"
    local = {path.name for path in (ROOT / "components").glob("*.yaml")}
    assert {path.name for path in folder.glob("*.yaml")} == local
    for name in local - {"pubsub.yaml"}:
        assert (folder / name).read_text() == (ROOT / "components" / name).read_text()


def test_the_run_file_reads_the_chosen_brokers_components(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATE_DIR", str(tmp_path))
    spec = scaled_run_file(
        instances=1,
        app_id="worker",
        app_port=8000,
        http_port=3500,
        grpc_port=50001,
        metrics_port=9190,
        env={},
        extra_resources=["/elsewhere"],
        broker="kafka",
    )

    assert spec["common"]["resourcesPaths"] == [str(tmp_path / "components-kafka"), "/elsewhere"]


def test_an_unknown_broker_is_refused_with_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUB", "rabbitmq")

    with pytest.raises(SystemExit, match="redis, kafka"):
        pubsub_of_environment()
