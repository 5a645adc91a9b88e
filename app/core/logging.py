"""loguru as the one log pipeline: JSON lines or readable text, stdlib and uvicorn routed in."""

import json
import logging
import sys
import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from loguru import logger

from app.core.config import LogLevel, SerilogSection

if TYPE_CHECKING:
    from loguru import Message, Record

# Serilog level names, as written in appsettings.json, to loguru's.
_LEVELS: dict[LogLevel, str] = {
    "Verbose": "TRACE",
    "Debug": "DEBUG",
    "Information": "INFO",
    "Warning": "WARNING",
    "Error": "ERROR",
    "Fatal": "CRITICAL",
}

_TEXT_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <8}</level> "
    "<cyan>{name}</cyan> {message} <dim>{extra}</dim>"
)


class _InterceptHandler(logging.Handler):
    """Hands stdlib records (uvicorn, pymongo, httpx, ...) to loguru under their logger name."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno

        def rename(loguru_record: "Record") -> None:
            loguru_record["name"] = record.name

        logger.patch(rename).opt(exception=record.exc_info).log(level, record.getMessage())


class _LevelFilter:
    """Per-namespace minimum levels: the longest matching prefix of the logger name wins."""

    def __init__(self, section: SerilogSection) -> None:
        self._default = logger.level(_LEVELS[section.minimum_level.default]).no
        self._overrides = sorted(
            (
                (prefix, logger.level(_LEVELS[level]).no)
                for prefix, level in section.minimum_level.override.items()
            ),
            key=lambda item: len(item[0]),
            reverse=True,
        )

    @property
    def lowest(self) -> int:
        """The sinks' level: below it loguru drops a call before it builds a record (a level of
        0 would build one, frame lookup included, for every `debug` call on the hot path)."""
        return min([self._default, *(minimum for _, minimum in self._overrides)])

    def __call__(self, record: "Record") -> bool:
        name = record["name"] or ""
        for prefix, minimum in self._overrides:
            if name == prefix or name.startswith(prefix + "."):
                return record["level"].no >= minimum
        return record["level"].no >= self._default


class _Redactor:
    """Replaces every secret the settings hold (tokens, the database password) in a line
    before it is written: a log line must never carry one, whatever logged it."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, line: str) -> str:
        for secret in self._secrets:
            line = line.replace(secret, "***")
        return line


def _json_line(message: "Message") -> str:
    record = message.record
    line: dict[str, Any] = {
        "time": record["time"].isoformat(),
        "level": record["level"].name,
        "logger": record["name"],
        "message": record["message"],
        **{key: _plain(value) for key, value in record["extra"].items()},
    }
    if record["exception"] is not None:
        line["exception"] = "".join(traceback.format_exception(*record["exception"]))
    return json.dumps(line, default=str) + "\n"


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


def _stdlib_level(level: LogLevel) -> int:
    return max(logger.level(_LEVELS[level]).no, logging.DEBUG)


def configure_logging(section: SerilogSection, *, secrets: Iterable[str] = ()) -> None:
    logger.remove()
    level_filter = _LevelFilter(section)
    redact = _Redactor(secrets)

    def json_sink(message: "Message") -> None:
        sys.stderr.write(redact(_json_line(message)))

    def text_sink(message: "Message") -> None:
        sys.stderr.write(redact(str(message)))

    if section.format == "json":
        logger.add(json_sink, level=level_filter.lowest, filter=level_filter)
    else:
        # diagnose=False: loguru would print the values of every variable in a traceback,
        # secrets included.
        logger.add(
            text_sink,
            level=level_filter.lowest,
            filter=level_filter,
            format=_TEXT_FORMAT,
            colorize=sys.stderr.isatty(),
            backtrace=False,
            diagnose=False,
        )
    # The stdlib levels mirror the filter, so that a library does not even build a record
    # that would be dropped (pymongo's debug records encode every command).
    logging.basicConfig(
        handlers=[_InterceptHandler()],
        level=_stdlib_level(section.minimum_level.default),
        force=True,
    )
    for prefix, level in section.minimum_level.override.items():
        logging.getLogger(prefix).setLevel(_stdlib_level(level))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "fastapi"):
        stdlib_logger = logging.getLogger(name)
        stdlib_logger.handlers = []
        stdlib_logger.propagate = True
