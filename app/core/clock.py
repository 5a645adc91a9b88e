"""The time the service writes: UTC, to the millisecond (what BSON dates hold)."""

from datetime import UTC, datetime


def utc_now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
