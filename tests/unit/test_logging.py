import json
import logging

import pytest
from loguru import logger

from app.core.config import SerilogSection, Settings
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


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_no_secret_reaches_a_log_line(capsys: pytest.CaptureFixture[str], log_format: str) -> None:
    settings = Settings(
        ConnectionStrings={"Default": "mongodb://svc:p%40ss-w0rd@db.internal:27017/Aevatar"},
        Dapr={"AppApiToken": "app-token-123", "ApiToken": "dapr-token-456"},
        Api={"OperatorToken": "operator-token-789"},
    )
    configure_logging(_section(Format=log_format), secrets=settings.secrets())

    logger.bind(header="dapr-token-456").info("called with app-token-123")
    try:
        raise RuntimeError("auth failed for operator-token-789 with password p@ss-w0rd")
    except RuntimeError:
        logger.exception("boom")
    logging.getLogger("pymongo").warning("uri mongodb://svc:p@ss-w0rd@db.internal")

    output = capsys.readouterr().err
    for secret in ("app-token-123", "dapr-token-456", "operator-token-789", "p@ss-w0rd"):
        assert secret not in output
    assert output.count("***") >= 5


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_call_below_every_level_builds_no_record(
    log_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A debug call on the hot path must be dropped before loguru builds a record (and looks up
    # the caller's frame): the level filter, which reads records, is not even asked.
    from app.core import logging as app_logging  # noqa: PLC0415

    asked: list[str] = []
    real_call = app_logging._LevelFilter.__call__

    def counting(self: object, record: dict[str, object]) -> bool:
        asked.append(str(record["message"]))
        return real_call(self, record)  # type: ignore[arg-type]

    monkeypatch.setattr(app_logging._LevelFilter, "__call__", counting)
    configure_logging(_section(Format=log_format))  # lowest level: Information

    logger.debug("run finished")
    logger.info("worker started")

    assert asked == ["worker started"]
