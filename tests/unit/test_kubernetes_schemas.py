"""deploy/kubernetes/ against the schemas a registry package brings offline:
kubernetes-validate (PyPI) holds Kubernetes' own, strict (no unknown field). No package holds
the Dapr CRDs' schemas, so their resources are checked for the shape Dapr reads."""

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
DAPR_KINDS = {"Component", "Configuration", "Resiliency"}


def resources() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.name}:{document['kind']}/{document['metadata']['name']}", document)
        for path in sorted(DEPLOY.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


@pytest.mark.parametrize(
    "document",
    [d for _, d in resources() if d["kind"] not in DAPR_KINDS],
    ids=[n for n, d in resources() if d["kind"] not in DAPR_KINDS],
)
def test_kubernetes_resources_match_the_kubernetes_schema(document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)


@pytest.mark.parametrize(
    "document",
    [d for _, d in resources() if d["kind"] in DAPR_KINDS],
    ids=[n for n, d in resources() if d["kind"] in DAPR_KINDS],
)
def test_dapr_resources_have_the_shape_dapr_reads(document: dict[str, Any]) -> None:
    assert document["apiVersion"] == "dapr.io/v1alpha1"
    assert set(document) <= {"apiVersion", "kind", "metadata", "spec", "scopes"}
    assert isinstance(document["spec"], dict)
    if document["kind"] == "Component":
        spec = document["spec"]
        assert set(spec) <= {"type", "version", "metadata", "initTimeout", "ignoreErrors"}
        assert spec["type"].count(".") >= 1
        assert spec["version"] == "v1"
        for item in spec.get("metadata", []):
            assert set(item) <= {"name", "value", "secretKeyRef"}
            assert "name" in item


def test_every_kind_of_resource_was_checked() -> None:
    kinds = {document["kind"] for _, document in resources()}
    assert {"Deployment", "Service", "Component", "Configuration", "Resiliency"} <= kinds
