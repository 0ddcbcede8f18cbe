"""A real daemon on PostgreSQL whose database goes silent for several seconds and comes
back (issue 14, "database cut off"): no thread of it dies of the unreachable database,
``/health`` says ``database_unreachable`` meanwhile and healthy again after, and a file
dropped after the heal is processed. The cut is a TCP proxy that goes silent
(tests/support/tcpproxy.py): the node sees no error, only its own timeouts.
"""

from __future__ import annotations

import time

import pytest

from support.http import health
from support.media import default_audio_languages
from support.tcpproxy import BlackholeProxy

pytestmark = pytest.mark.integration


def probe(port: int) -> tuple[int, dict[str, object]]:
    """``/health``'s status and body; ``(0, {})`` when it did not answer in time (a check
    of a pooled connection can wait on the silent network for its TCP timeout)."""
    try:
        return health(port)
    except OSError:
        return 0, {}


def test_a_daemon_whose_database_is_cut_then_healed_keeps_its_threads_and_works_on(
    tmp_path, daemon_factory, postgres, jpn_eng_mkv
):
    library = tmp_path / "movies"
    library.mkdir()
    database = postgres.database(tmp_path)
    with BlackholeProxy(("127.0.0.1", postgres.port)) as proxy:
        url = database.url.replace(f":{postgres.port}/", f":{proxy.port}/")
        node = daemon_factory({
            "watch": {"libraries": {"movies": str(library)}, "settle_seconds": 0.5},
            "database": {
                "path": str(database.path), "url": url, "password_file": database.password_file,
                "lease_seconds": 6, "lease_heartbeat_seconds": 1,
            },
            "node": {"name": "node-a"},
            "http": {"listen": "127.0.0.1:0"},
            "logging": {"format": "json", "level": "info"},
        }, name="a")
        port = node.wait_for("http_listening")[0]["port"]
        (library / "before.mkv").write_bytes(jpn_eng_mkv.read_bytes())
        node.wait_for("file_processed", path=str(library / "before.mkv"))

        proxy.blackhole()
        deadline = time.monotonic() + 60
        while probe(port)[1].get("reason") != "database_unreachable":  # the node noticed
            assert time.monotonic() < deadline, node.tail()
            time.sleep(0.5)
        time.sleep(8)  # several seconds more of silence: every thread has asked the database by now
        assert not node.named("thread_died"), node.tail()
        proxy.heal()

        deadline = time.monotonic() + 90  # generous: recovery takes seconds
        while probe(port)[0] != 200:
            assert node.proc.poll() is None, node.tail()
            assert time.monotonic() < deadline, f"not healthy again: {probe(port)}\n{node.tail()}"
            time.sleep(0.5)
        (library / "after.mkv").write_bytes(jpn_eng_mkv.read_bytes())
        node.wait_for("file_processed", path=str(library / "after.mkv"), timeout=120)
        assert default_audio_languages(library / "after.mkv") == ["eng"]
        assert not node.named("thread_died"), node.tail()
        assert node.proc.poll() is None
        node.kill()  # not the point here: a clean stop is tested elsewhere
