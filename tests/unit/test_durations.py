"""Durations in messages (a tool's time limit): a tenth of a second at most, two units."""

from __future__ import annotations

import pytest

from vpod.durations import duration_text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1.33333, "1.3 s"), (30, "30 s"), (0.05, "0.1 s"), (59.96, "1 min"), (245, "4 min 5 s"), (600, "10 min"),
     (3599.6, "1 h"), (7980, "2 h 13 min"), (29400, "8 h 10 min"), (93600, "1 d 2 h"), (604800, "7 d")],
)  # fmt: skip
def test_seconds_read_as_people_say_them(seconds, text):
    assert duration_text(seconds) == text
