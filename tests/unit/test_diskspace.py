"""Free-space checks: sizes for people, the remux estimate, the ledger of writes in
progress, and the reservation past a file's end (on the real filesystem of tmp_path)."""

from __future__ import annotations

import os

import pytest

from vpod.diskspace import InsufficientSpace, SpaceLedger, format_bytes, free_bytes, release_reserved
from vpod.diskspace import remux_need, reserve_after_end


@pytest.mark.parametrize(
    "count, text",
    [(0, "0 bytes"), (1023, "1023 bytes"), (1024, "1.0 KiB"), (5680, "5.5 KiB"), (64 << 20, "64.0 MiB"), (3 << 40, "3.0 TiB")],
)
def test_format_bytes(count, text):
    assert format_bytes(count) == text


def test_remux_need_is_the_size_plus_five_percent_rounded_up():
    assert remux_need(0) == 0
    assert remux_need(100) == 105
    assert remux_need(101) == 107
    assert remux_need(20 << 30) == (20 << 30) + (1 << 30)


def test_ledger_counts_writes_in_progress(tmp_path):
    """Two writes that each fit alone but not together: the second is refused while the
    first is under way, and fits once it ended."""
    ledger = SpaceLedger()
    half = free_bytes(tmp_path) * 6 // 10
    with ledger.claim(tmp_path / "a.mkv", tmp_path, half, 0, "the first write"):
        with pytest.raises(InsufficientSpace) as caught:
            with ledger.claim(tmp_path / "b.mkv", tmp_path, half, 0, "the second write"):
                pass
        assert caught.value.reason == "insufficient_space" and not caught.value.permanent
        message = str(caught.value)
        assert message.startswith(f"{tmp_path / 'b.mkv'}: not enough free space for the second write: it needs {half} bytes")
        assert "promised to writes vpod has under way" in message
    with ledger.claim(tmp_path / "b.mkv", tmp_path, half, 0, "the second write"):
        pass


def test_ledger_counts_what_a_tracked_file_already_holds(tmp_path):
    ledger = SpaceLedger()
    written = tmp_path / "growing"
    with ledger.claim(tmp_path / "a.mkv", tmp_path, 1 << 20, 0, "a write") as claim:
        claim.track(written)
        assert claim.outstanding() == 1 << 20
        with open(written, "wb") as f:
            f.write(bytes(256 << 10))
            f.flush()
            os.fsync(f.fileno())
        assert claim.outstanding() == (1 << 20) - written.stat().st_blocks * 512


def test_margin_must_stay_free(tmp_path):
    with pytest.raises(InsufficientSpace, match="kept free for other programs"):
        with SpaceLedger().claim(tmp_path / "a.mkv", tmp_path, 0, free_bytes(tmp_path) + (1 << 30), "a write"):
            pass


def test_reservation_keeps_the_size_and_is_given_back(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 5000)
    fd = os.open(path, os.O_RDWR)
    try:
        before = os.fstat(fd).st_blocks
        if not reserve_after_end(fd, 5000, 1 << 20):
            pytest.skip("this filesystem cannot reserve blocks past the end of a file")
        assert os.fstat(fd).st_size == 5000
        assert os.fstat(fd).st_blocks * 512 >= (1 << 20)
        release_reserved(fd)
        assert os.fstat(fd).st_blocks == before and os.fstat(fd).st_size == 5000
    finally:
        os.close(fd)
