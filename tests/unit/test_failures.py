"""Failure fingerprints: the same failure with other ids and numbers is one group."""

from app.models.failures import fingerprint_of, normalised


def test_ids_numbers_and_quoted_text_do_not_split_a_failure() -> None:
    assert normalised("order 123 not found") == normalised("order 4567 not found")
    assert normalised("run 6b0f3a81338fee73be9f306b lost") == "run <id> lost"
    assert normalised("key '3f2a' missing") == "key <str> missing"
    uuid = "0b8e3c2a-1f2d-4c3b-9a8e-7d6c5b4a3f2e"
    assert normalised(f"customer {uuid} gone at 0xdeadbeef") == "customer <uuid> gone at <hex>"
    assert normalised("first line 1\nsecond line") == "first line <n>"


def test_the_fingerprint_tells_types_and_messages_apart() -> None:
    assert fingerprint_of("KeyError", "a 1") == fingerprint_of("KeyError", "a 2")
    assert fingerprint_of("KeyError", "a 1") != fingerprint_of("ValueError", "a 1")
    assert fingerprint_of("KeyError", "a 1") != fingerprint_of("KeyError", "b 1")
    assert len(fingerprint_of("KeyError", "")) == 12
