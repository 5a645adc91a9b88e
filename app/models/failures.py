"""Failure fingerprints: dead runs grouped by what went wrong, whatever ids and numbers their
messages carry ("order 123 not found" and "order 456 not found" are one failure)."""

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

_VOLATILE = [
    (re.compile(r"\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b", re.I), "<uuid>"),
    (re.compile(r"\b[0-9a-f]{24}\b", re.I), "<id>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<str>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
]  # fmt: skip


def normalised(message: str) -> str:
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    for pattern, placeholder in _VOLATILE:
        first_line = pattern.sub(placeholder, first_line)
    return first_line[:300]


def fingerprint_of(error_type: str, message: str) -> str:
    """A short stable id of the failure, for URLs and filters."""
    return hashlib.sha1(f"{error_type}\n{normalised(message)}".encode()).hexdigest()[:12]


@dataclass
class FailureGroup:
    fingerprint: str
    error_type: str
    message: str  # normalised
    example: str  # one message as it was
    count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    jobs: Counter[str] = field(default_factory=Counter)

    def add(self, *, job: str, at: datetime | None) -> None:
        self.count += 1
        self.jobs[job] += 1
        if at is not None:
            self.first_seen = min(self.first_seen or at, at)
            self.last_seen = max(self.last_seen or at, at)
