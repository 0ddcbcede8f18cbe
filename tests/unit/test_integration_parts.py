"""The integrations' parts on their own: ``[notify]`` and ``[media_servers]`` config,
path mapping to a server's view, Plex's section choice, the outbox's bounds and retries,
and the batch summary's text."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from vpod.config import config_from_data
from vpod.errors import ConfigError
from vpod.integrations.http_call import CallFailed
from vpod.integrations.media_servers import plex_section
from vpod.integrations.notifications import MAX_LISTED, batch_message, url_label
from vpod.integrations.outbox import Call, Outbox, RetryRule, Skipped
from vpod.outcomes import Reason
from vpod.reload import plan_reload
from vpod.results import BatchResult, FileProcessingResult


def test_notify_urls_come_from_the_file_too_and_are_never_shown(tmp_path):
    urls = tmp_path / "notify.urls"
    urls.write_text("# phone\nntfys://secret-topic\n\njson://127.0.0.1:9/hook\n")
    config = config_from_data({"notify": {"urls": ["tgram://bot-token/chat"], "urls_file": str(urls)}}, source=None)
    assert config.notify.urls == ("tgram://bot-token/chat", "ntfys://secret-topic", "json://127.0.0.1:9/hook")
    shown = str(config.as_dict()) + repr(config)
    assert "secret-topic" not in shown and "bot-token" not in shown
    assert url_label(2, config.notify.urls[1]) == "notify url 2 (ntfys)"


@pytest.mark.parametrize("table, where", [
    ({"urls": ["not a url"]}, "[notify] urls"),
    ({"events": ["file_done"]}, "[notify] events"),
    ({"urls_file": "/nonexistent/urls"}, "[notify] urls_file"),
    ({"attempts": 0}, "[notify] attempts"),
])
def test_bad_notify_keys_name_the_key(table, where):
    with pytest.raises(ConfigError) as caught:
        config_from_data({"notify": table}, source=None)
    assert where in str(caught.value)


def test_a_media_server_needs_one_token_and_reads_it_from_its_file(tmp_path):
    token = tmp_path / "plex.token"
    token.write_text("  abcXYZ\n")
    server = {"kind": "plex", "url": "http://127.0.0.1:32400", "token_file": str(token)}
    config = config_from_data({"media_servers": {"plex": server}}, source=None)
    assert config.media_servers.servers[0].token == "abcXYZ"
    assert "abcXYZ" not in str(config.as_dict()) + repr(config)
    for bad, where in (
        ({"kind": "plex", "url": "http://h:1"}, "[media_servers.plex] token"),
        ({"kind": "kodi", "url": "http://h:1", "token": "t"}, "[media_servers.plex] kind"),
        ({"kind": "plex", "url": "http://h:1", "token": "t", "token_file": str(token)}, "[media_servers.plex] token"),
    ):
        with pytest.raises(ConfigError) as caught:
            config_from_data({"media_servers": {"plex": bad}}, source=None)
        assert where in str(caught.value)


def test_paths_are_sent_as_the_server_sees_them():
    config = config_from_data({"media_servers": {"jf": {
        "kind": "jellyfin", "url": "http://h:8096", "token": "t",
        "path_mappings": {"/media": "/srv/media", "/media/tv": "/srv/tv", "D:\\Films": "/srv/films"},
    }}}, source=None)
    server = config.media_servers.servers[0]
    assert server.server_path(Path("/srv/tv/Show/S01/e.mkv")) == "/media/tv/Show/S01/e.mkv"
    assert server.server_path(Path("/srv/media/Film/f.mkv")) == "/media/Film/f.mkv"
    assert server.server_path(Path("/srv/films/Up (2009)/Up.mkv")) == "D:\\Films\\Up (2009)\\Up.mkv"
    assert server.server_path(Path("/srv/mediafiles/x.mkv")) == "/srv/mediafiles/x.mkv"  # whole components only


def test_plex_refreshes_the_section_whose_location_holds_the_folder():
    answer = {"MediaContainer": {"Directory": [
        {"key": "1", "Location": [{"path": "/data"}]},
        {"key": "2", "Location": [{"path": "/data/tv"}, {"path": "/other"}]},
        {"key": "3", "Location": [{"path": "/data/tvshows"}]},
    ]}}
    assert plex_section(answer, "/data/tv/Show/Season 01") == "2"
    assert plex_section(answer, "/data/movies/Up") == "1"
    assert plex_section(answer, "/elsewhere") is None
    with pytest.raises(CallFailed):
        plex_section({"errors": []}, "/data")


def _call(send, name="c"):
    return Call("target", "jellyfin", name, send)


def test_a_full_queue_drops_and_counts_instead_of_growing():
    dropped: list[str] = []
    outbox = Outbox("t", capacity=2, rule=RetryRule(), on_drop=lambda call, reason: dropped.append(reason))
    assert outbox.put(_call(lambda: None)) and outbox.put(_call(lambda: None))
    assert not outbox.put(_call(lambda: None))  # the thread is not started: nothing leaves the queue
    assert dropped == ["queue_full"] and outbox.pending() == 2
    outbox.close(0.0)
    assert dropped == ["queue_full", "shutdown", "shutdown"]


def test_retryable_failures_are_tried_again_and_others_are_not():
    tries = {"flaky": 0, "refused": 0}
    outcomes: list[tuple[str, str]] = []
    done = threading.Event()

    def flaky() -> str:
        tries["flaky"] += 1
        if tries["flaky"] < 3:
            raise CallFailed("HTTP 503", retryable=True)
        return "ok"

    def refused() -> None:
        tries["refused"] += 1
        raise CallFailed("HTTP 401", retryable=False)

    def skipped() -> None:
        raise Skipped("not its file")

    def record(call: Call, outcome: str) -> None:
        outcomes.append((call.action, outcome))
        if len(outcomes) == 3:
            done.set()

    outbox = Outbox("t", capacity=10, rule=RetryRule(attempts=5, retry_seconds=0.01), on_outcome=record)
    for send, name in ((flaky, "flaky"), (refused, "refused"), (skipped, "skipped")):
        outbox.put(_call(send, name))
    outbox.start()
    assert done.wait(30)
    outbox.close(1.0)
    assert tries == {"flaky": 3, "refused": 1}
    assert outcomes == [("flaky", "notified"), ("refused", "failed"), ("skipped", "skipped")]


def test_a_batch_summary_counts_and_lists_the_failures():
    failed = [
        FileProcessingResult(Path(f"/lib/f{n}.mkv"), False, error="ffprobe: bad\nmore", reason=Reason.UNREADABLE)
        for n in range(MAX_LISTED + 2)
    ]
    batch = BatchResult("b1", 0.0, total_files=len(failed) + 1, results=[*failed, FileProcessingResult(Path("/lib/ok.mkv"), True)])
    message = batch_message(batch, "node1")
    assert message.title == f"vpod: batch: {MAX_LISTED + 2} failed" and message.level == "failure"
    assert f"{MAX_LISTED + 3} files: 1 done, {MAX_LISTED + 2} failed, 0 skipped" in message.body
    assert "- /lib/f0.mkv: unreadable: ffprobe: bad" in message.body and "/lib/f21.mkv" not in message.body
    assert "... and 2 more" in message.body


def test_notify_and_media_servers_reload_live():
    old = config_from_data({}, source=None)
    new = config_from_data({
        "notify": {"urls": ["json://h/x"]},
        "media_servers": {"p": {"kind": "plex", "url": "http://h:1", "token": "t"}},
    }, source=None)
    plan = plan_reload(old, new)
    assert {"[notify] urls", "[media_servers] servers"} <= set(plan.changed) and not plan.needs_restart
    assert plan.config.notify.urls == ("json://h/x",)


def test_a_refused_token_is_not_retried_and_the_error_does_not_show_it():
    from support.media_servers import MediaBrowserStandIn
    from vpod.integrations.media_servers import refresh
    from vpod.integrations.settings import MediaServer

    with MediaBrowserStandIn("emby", "right-token") as emby:
        server = MediaServer(name="e", kind="emby", url=emby.url, token="wrong-token", timeout_seconds=5.0)
        with pytest.raises(CallFailed) as caught:
            refresh(server, Path("/m/a.mp4"), Path("/m/a.mkv"))
    assert not caught.value.retryable and "401" in str(caught.value) and "wrong-token" not in str(caught.value)
    assert [r.headers["X-Emby-Token"] for r in emby.requests] == ["wrong-token"]


def test_a_reload_sends_new_messages_to_the_new_urls_only():
    from support.media_servers import JsonReceiver
    from vpod.integrations.notifications import Notifier, test_message

    with JsonReceiver() as first, JsonReceiver() as second:
        old = config_from_data({"notify": {"urls": [f"json://127.0.0.1:{first.port}/a"]}}, source=None).notify
        new = config_from_data({"notify": {"urls": [f"json://127.0.0.1:{second.port}/b"]}}, source=None).notify
        notifier = Notifier(old, node="n")
        notifier.start()
        notifier.send(test_message("n"))
        assert notifier.drain(30)
        notifier.reconfigure(new)
        notifier.send(test_message("n"))
        assert notifier.drain(30)
        notifier.close(1.0)
    assert len(first.messages) == 1 and len(second.messages) == 1
    assert [r.path for r in first.requests + second.requests] == ["/a", "/b"]


def test_each_chosen_event_makes_one_message_and_the_others_none():
    from support.media_servers import JsonReceiver
    from vpod.events import BatchClosed, FileFinished, ProcessingPaused, WatchRootLost, WatchRootRestored
    from vpod.integrations.notifications import Notifier

    failed = FileProcessingResult(Path("/lib/x.mkv"), False, error="mkvmerge: bad", reason=Reason.UNREADABLE)
    with JsonReceiver() as receiver:
        config = config_from_data({"notify": {
            "urls": [f"json://127.0.0.1:{receiver.port}/n"],
            "events": ["file_failed", "processing_paused", "watch_folder_lost", "watch_folder_restored"],
        }}, source=None).notify
        notifier = Notifier(config, node="nas")
        notifier.start()
        notifier.on_file_finished(FileFinished(failed, retrying=True))  # not final: nothing
        notifier.on_file_finished(FileFinished(failed, retrying=False))
        notifier.on_processing_paused(ProcessingPaused(failed))
        notifier.on_watch_root_lost(WatchRootLost(Path("/lib"), moved=True, library="movies"))
        notifier.on_watch_root_restored(WatchRootRestored(Path("/lib"), library="movies"))
        notifier.on_batch_closed(BatchClosed(BatchResult("b", 0.0, total_files=1, results=[failed]), "daemon"))  # not chosen
        assert notifier.drain(30)
        notifier.close(1.0)
    assert [(m["title"], m["type"]) for m in receiver.messages] == [
        ("vpod: failed: x.mkv", "failure"), ("vpod: processing paused", "failure"),
        ("vpod: watch folder lost", "warning"), ("vpod: watch folder restored", "success"),
    ]
    assert "moved away or replaced" in receiver.messages[2]["message"] and "nas" in receiver.messages[0]["message"]


def test_a_held_call_is_joined_by_the_same_call_for_the_next_files():
    """A re-test saw a 30-file season pack make 30 RescanSeries: each rename's call went
    out before the next rename came. With a hold, the calls put within it become one."""
    sent: list[tuple[object, ...]] = []
    done = threading.Event()

    def rescan(items: tuple[object, ...]) -> Call:
        def send() -> None:
            sent.append(items)
            done.set()

        return Call("sonarr", "sonarr", "RescanSeries", send, key=("sonarr", 7), items=items,
                    merge=lambda later: rescan(items + later.items))

    outbox = Outbox("t", capacity=10, rule=RetryRule(), hold_seconds=0.5)
    outbox.start()
    for n in range(5):
        assert outbox.put(rescan((f"e{n}",)))
    assert done.wait(30)
    outbox.close(1.0)
    assert sent == [("e0", "e1", "e2", "e3", "e4")]  # one call for the five renames

    unheld, count = Outbox("u", capacity=10, rule=RetryRule()), []
    unheld.start()
    for _ in range(3):
        unheld.put(Call("sonarr", "sonarr", "RescanSeries", lambda: count.append(1), key=("sonarr", 7)))
        assert unheld.drain(10)  # without a hold each is made before the next comes
    unheld.close(1.0)
    assert len(count) == 3
