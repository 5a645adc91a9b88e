"""What may go into a run document: values BSON encodes, under keys MongoDB takes as data.

A handler's result is converted to JSON-safe values (a `Decimal` becomes a string, a `date` an
ISO string, a set a list); one that cannot be converted fails its attempt with an error that
names the type. A payload from outside (an event that failed validation) is stored as it came
only when every key is plain and it is not nested too deep; otherwise as truncated JSON text, so
that no write is ever built from keys like `$where` or `a.b`.
"""

import json
from typing import Any

from pydantic_core import PydanticSerializationError, to_jsonable_python

from app.core.errors import AevatarError

# MongoDB nests documents 100 deep; the run document itself takes a few of those levels.
MAX_DEPTH = 64
MAX_RAW_CHARS = 16_384


class ResultNotStorable(AevatarError):
    """A handler returned something the run history cannot hold; the message names it."""


def result_to_store(result: object) -> dict[str, Any] | None:
    """The result as the run document keeps it: a JSON-safe dict (or None)."""
    if result is None:
        return None
    try:
        converted = to_jsonable_python(result)
    except PydanticSerializationError as exc:
        raise ResultNotStorable(
            f"the handler returned a {type(result).__name__} the run history cannot store "
            f"({exc}); return a dict of JSON values or a pydantic model"
        ) from exc
    stored = converted if isinstance(converted, dict) else {"value": converted}
    problem = unsafe_part(stored)
    if problem:
        raise ResultNotStorable(f"the handler's result cannot be stored: {problem}")
    return stored


def payload_to_store(payload: object) -> Any:
    """A payload from outside as it may be written: itself when safe, else JSON text."""
    if unsafe_part(payload) is None:
        return payload
    try:
        text = json.dumps(payload, default=repr)
    except (ValueError, RecursionError):
        text = f"<a {type(payload).__name__} too deeply nested to show>"
    return {"unstored_payload": text[:MAX_RAW_CHARS], "truncated": len(text) > MAX_RAW_CHARS}


def unsafe_part(value: object) -> str | None:
    """Why `value` may not be written as it is (a key MongoDB reads as an operator or a path,
    nesting too deep), or None when it may."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested more than {MAX_DEPTH} levels deep"
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str) or key.startswith("$") or "." in key or "\0" in key:
                    return f"key {str(key)[:40]!r} (keys may not start with '$' or contain '.')"
                stack.append((child, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)
    return None
