"""A clock the test moves by hand, for code that takes ``clock=time.monotonic``."""

from __future__ import annotations


class FakeClock:
    """Returns ``now`` (seconds); tests add to it."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
