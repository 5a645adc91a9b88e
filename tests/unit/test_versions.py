"""The Dapr runtime and the Python SDK are pinned to the same minor release."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _runtime_version() -> str:
    text = (ROOT / "stack" / "versions.env").read_text()
    match = re.search(r"^DAPR_RUNTIME_VERSION=(\S+)$", text, re.MULTILINE)
    assert match, "stack/versions.env must set DAPR_RUNTIME_VERSION"
    return match.group(1)


def _sdk_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"(dapr|dapr-ext-fastapi)==(\S+)", requirement)
        if match:
            pins[match.group(1)] = match.group(2)
    return pins


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def test_the_sdk_is_pinned_exactly_to_the_runtime_minor() -> None:
    pins = _sdk_pins()

    assert set(pins) == {"dapr", "dapr-ext-fastapi"}
    assert {_minor(v) for v in pins.values()} == {_minor(_runtime_version())}
