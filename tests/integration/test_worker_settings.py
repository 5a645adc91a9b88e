"""A worker module declares its own settings section, read like every other section."""

import json
from pathlib import Path

import pytest

from app.core.config import Settings
from tests.integration.conftest import serve
from tests.support import run_reaching, trigger


async def test_a_job_reads_its_module_section_from_the_file_and_the_environment(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_file = tmp_path / "appsettings.json"
    settings_file.write_text(json.dumps({"TestGreeting": {"Greeting": "hi", "Times": 2}}))
    monkeypatch.setenv("AEVATAR_SETTINGS_FILE", str(settings_file))
    monkeypatch.setenv("TestGreeting__Times", "3")  # the environment wins over the file

    async with serve(settings) as client:
        run = await run_reaching(client, await trigger(client, "greeting_job"), {"succeeded"})

    assert run["result"] == {"greeting": "hi", "times": 3}


async def test_without_the_section_its_defaults_apply(settings: Settings) -> None:
    async with serve(settings) as client:
        run = await run_reaching(client, await trigger(client, "greeting_job"), {"succeeded"})

    assert run["result"] == {"greeting": "hello", "times": 1}
