"""The benchmark's profile summary, from py-spy's collapsed stacks."""

import pytest

from bench.profile import summarise

COLLAPSED = """\
run (server.py:10);dispatch (commands.py:20);update (storage.py:30) 6
run (server.py:10);dispatch (commands.py:21);insert (storage.py:40) 3
run (server.py:10);read (wire.py:50) 1
"""


def test_frames_are_ranked_by_their_own_samples_and_by_the_samples_they_are_within() -> None:
    profile = summarise("db", COLLAPSED)

    assert profile.samples == 10
    frame, share = profile.own[0]
    assert frame == "update (storage.py)"
    assert share == pytest.approx(60.0)
    assert dict(profile.own)["insert (storage.py)"] == pytest.approx(30.0)
    # A frame on every stack says nothing: left out of the inclusive list.
    assert "run (server.py)" not in dict(profile.within)
    # Lines of one function count once per stack.
    assert dict(profile.within)["dispatch (commands.py)"] == pytest.approx(90.0)
