"""Values as the actor SDK hands them back. Its JSON decoder
(`dapr.serializers.json.DaprJSONDecoder`) turns every string that begins like a date into a
`datetime`, in the state it reads back from the store (after the actor moved to another
instance, or was idle) and in method requests alike: a tick kept as text comes back as a
datetime, and `datetime.fromisoformat` refuses it. These read either form as one."""

from datetime import datetime
from typing import Any


def as_text(value: Any) -> str:
    """A stored or requested entry as text, the same whether the decoder made it a datetime
    or left it a string: a moment as its ISO form, anything else as it is."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value[:1].isdigit():
        try:
            return datetime.fromisoformat(value).isoformat()
        except ValueError:
            return value
    return str(value)


def as_moment(value: Any) -> datetime:
    """A stored moment, a datetime already or the ISO text of one."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
