"""What may go into a run document: handler results and payloads from outside."""

from datetime import date
from decimal import Decimal

import pytest

from app.dispatch.storable import (
    MAX_DEPTH,
    ResultNotStorable,
    payload_to_store,
    result_to_store,
    unsafe_part,
)


def test_results_become_json_safe_dicts() -> None:
    assert result_to_store(None) is None
    assert result_to_store({"n": Decimal("1.5"), "d": date(2026, 1, 2), "s": {1}}) == {
        "n": "1.5",
        "d": "2026-01-02",
        "s": [1],
    }
    assert result_to_store([1, 2]) == {"value": [1, 2]}


def test_a_result_of_an_unknown_type_names_it() -> None:
    class Widget:
        pass

    with pytest.raises(ResultNotStorable, match="Widget"):
        result_to_store({"w": Widget()})


def test_a_result_with_operator_keys_is_refused() -> None:
    with pytest.raises(ResultNotStorable, match=r"\$set"):
        result_to_store({"$set": 1})


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"$where": "1"}, "'$where'"),
        ({"a": [{"b.c": 1}]}, "'b.c'"),
        ({"a\0": 1}, "keys may not"),
    ],
)
def test_unsafe_keys_are_found_at_any_depth(value: object, problem: str) -> None:
    found = unsafe_part(value)
    assert found is not None
    assert problem in found


def test_deep_nesting_is_found_without_recursion() -> None:
    deep: object = 1
    for _ in range(5_000):
        deep = {"a": deep}

    assert unsafe_part(deep) == f"nested more than {MAX_DEPTH} levels deep"
    stored = payload_to_store(deep)
    assert isinstance(stored, dict)
    assert "too deeply nested" in stored["unstored_payload"]
    assert unsafe_part(stored) is None


def test_a_safe_payload_is_stored_as_it_came() -> None:
    payload = {"order": {"id": "o-1", "lines": [{"sku": "x", "qty": 2}]}}

    assert payload_to_store(payload) is payload
