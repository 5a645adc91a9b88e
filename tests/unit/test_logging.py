import json
import logging

import pytest
from loguru import logger

from app.core.config import SerilogSection
from app.core.logging import configure_logging


def _section(**overrides: object) -> SerilogSection:
    return SerilogSection.model_validate(
        {"MinimumLevel": {"Default": "Information", "Override": {"noisy": "Error"}}, **overrides}
    )


def test_json_lines_carry_bound_context(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(_section(Format="json"))
    logger.bind(job="heartbeat", run_id="r1").info("run finished")

    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["message"] == "run finished"
    assert line["level"] == "INFO"
    assert line["job"] == "heartbeat"
    assert line["run_id"] == "r1"


def test_stdlib_loggers_are_routed_and_filtered_per_namespace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(_section(Format="json"))

    logging.getLogger("noisy.child").warning("dropped: below the override")
    logging.getLogger("noisy").error("kept: at the override")
    logging.getLogger("quiet").info("kept: at the default")
    logging.getLogger("quiet").debug("dropped: below the default")

    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("noisy", "kept: at the override"),
        ("quiet", "kept: at the default"),
    ]
