"""The dashboard's Jinja2 templates, with the filters its pages use."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    if value == float("inf"):
        return "> 300 s"
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.1f} s"


def _bytes(value: int) -> str:
    return f"{value / 1_048_576:.0f} MB"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, ensure_ascii=False)


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(when=_when, ms=_ms, mb=_bytes, pretty=_pretty)
