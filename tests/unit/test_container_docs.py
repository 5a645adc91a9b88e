"""The `podman run` line of docs/operations.md works as written on machines like these: podman
with the project's containers.conf (runc with limits it may set), and the two tokens the image
needs to start in production, with the flags the container test runs the image with."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCUMENT = REPO / "docs" / "operations.md"
CONTAINER_SECTION = re.compile(r"^## Container\n.*?^```bash\n(.*?)^```", re.S | re.M)


def documented_podman_run() -> str:
    found = CONTAINER_SECTION.search(DOCUMENT.read_text())
    assert found is not None, "docs/operations.md has no bash block in its Container section"
    lines = found.group(1).replace("\\\n", " ").splitlines()
    (command,) = [line for line in lines if "podman run" in line]
    return command


def test_the_podman_line_uses_the_projects_containers_conf_and_passes_both_tokens() -> None:
    command = documented_podman_run()
    assert command.startswith("CONTAINERS_CONF=stack/containers.conf podman run")
    assert (REPO / "stack" / "containers.conf").is_file()
    words = command.split()
    assert "APP_API_TOKEN" in words
    assert "Api__OperatorToken" in words
    block = CONTAINER_SECTION.search(DOCUMENT.read_text())
    assert block is not None
    (export,) = [line for line in block.group(1).splitlines() if line.startswith("export ")]
    assert "APP_API_TOKEN=" in export
    assert "Api__OperatorToken=" in export


def test_the_podman_line_runs_the_image_as_the_container_test_does() -> None:
    command = documented_podman_run()
    for flag in ("--read-only", "--tmpfs /tmp", "--user 10001:10001", "--cap-drop ALL"):
        assert flag in command, flag
    tested = (REPO / "tests" / "e2e" / "test_container.py").read_text()
    for flag in ('"--read-only"', '"--tmpfs", "/tmp"', '"--user", "10001:10001"'):
        assert flag in tested, flag
