"""vpod.safety.open_for_processing with a claim (docs/architecture.md "Claims and
leases"): a ``flock`` held by another real process does not keep a claimed file from
its claim; without a claim it still does; a writer still does, claim or not."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.flocks import hold_flock

from vpod.safety import Busy, open_for_processing


@pytest.fixture
def media(tmp_path: Path) -> Path:
    path = tmp_path / "a.mkv"
    path.write_bytes(b"\x1a\x45\xdf\xa3" + b"\0" * 64)
    return path


def test_a_claim_goes_on_without_a_lock_held_elsewhere_but_nothing_else_does(media: Path) -> None:
    holder = hold_flock(media, "rb")
    try:
        with pytest.raises(Busy):
            open_for_processing(media, (media.parent,), follow_symlinks=False, wait=False)
        with open_for_processing(media, (media.parent,), follow_symlinks=False, wait=True,
                                 lock_wait_seconds=0.2) as opened:
            assert not opened.locked and opened.path == media
    finally:
        holder.kill()
        holder.wait()
    with open_for_processing(media, (media.parent,), follow_symlinks=False, wait=False,
                             lock_wait_seconds=0.2) as opened:
        assert opened.locked  # free: taken as before


def test_a_file_open_for_writing_is_refused_even_with_a_claim(media: Path) -> None:
    holder = hold_flock(media, "r+b")
    try:
        with pytest.raises(Busy, match="open for writing"):
            open_for_processing(media, (media.parent,), follow_symlinks=False, wait=False, lock_wait_seconds=0.2)
    finally:
        holder.kill()
        holder.wait()
