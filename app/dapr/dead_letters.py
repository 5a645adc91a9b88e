"""The dead-letter topic: where daprd puts a message the app dropped, or one it could not read.

Every subscription names `DEAD_LETTER_TOPIC`; the app subscribes to it with `rawPayload`, so
daprd delivers whatever bytes were dead-lettered, CloudEvent or not, wrapped in an envelope of
its own. `DeadLetter.from_envelope` unwraps them: the original CloudEvent's id, topic and data
when the bytes are one, else the bytes as text.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

DEAD_LETTER_TOPIC = "worker-dead-letters"
_MAX_TEXT = 16_384


@dataclass(frozen=True)
class DeadLetter:
    id: str
    topic: str | None
    data: Any
    readable: bool  # the dead-lettered bytes were a CloudEvent

    @classmethod
    def from_envelope(cls, envelope: Any) -> "DeadLetter":
        envelope = envelope if isinstance(envelope, dict) else {}
        envelope_id = str(envelope.get("id") or "unknown")
        raw = _raw_bytes(envelope)
        try:
            original = json.loads(raw)
        except (ValueError, RecursionError):
            original = None
        if isinstance(original, dict) and isinstance(original.get("id"), str) and original["id"]:
            topic = original.get("topic")
            return cls(
                id=original["id"],
                topic=topic if isinstance(topic, str) else None,
                data=original.get("data"),
                readable=True,
            )
        text = raw.decode("utf-8", errors="replace")
        return cls(id=envelope_id, topic=None, data=text[:_MAX_TEXT], readable=False)


def _raw_bytes(envelope: dict[str, Any]) -> bytes:
    encoded = envelope.get("data_base64")
    if isinstance(encoded, str):
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return encoded.encode()
    data = envelope.get("data")
    if isinstance(data, str):
        return data.encode()
    try:
        return json.dumps(data).encode()
    except (ValueError, TypeError, RecursionError):
        return b""
