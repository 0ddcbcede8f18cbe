"""The Sonarr/Radarr v3 client against a stand-in instance (tests/support/arr.py):
the documented shapes, path matching and mappings, language names, and every way an
instance can fail to answer (issue 13 item 2)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from support.arr import ArrStandIn
from vpod.arr_config import ArrInstance
from vpod.original.client import ArrItem, ArrUnavailable, fetch_items, parse_items
from vpod.original.folders import FolderIndex
from vpod.original.names import language_code

KEY = "0123456789abcdef0123456789abcdef"


def radarr(url: str, **kw: object) -> ArrInstance:
    return ArrInstance(**{"name": "movies", "kind": "radarr", "url": url, "api_key": KEY, "timeout_seconds": 5.0, **kw})


def test_radarr_movies_are_read_from_the_documented_shape():
    films = [("Parasite", "/movies/Parasite (2019)", "Korean"), ("Amélie", "/movies/Amélie (2001)", "French")]
    with ArrStandIn("radarr", films, api_key=KEY) as stand_in:
        items = fetch_items(radarr(stand_in.url))
    assert items == [
        ArrItem("/movies/Parasite (2019)", "Parasite", "Korean", 1),
        ArrItem("/movies/Amélie (2001)", "Amélie", "French", 2),
    ]


def test_sonarr_series_with_and_without_an_original_language():
    series = [("Dark", "/tv/Dark", "German"), ("Old Show", "/tv/Old Show", None)]  # None: Sonarr v3
    with ArrStandIn("sonarr", series, api_key=KEY) as stand_in:
        instance = ArrInstance(name="tv", kind="sonarr", url=stand_in.url + "/", api_key=KEY)
        items = fetch_items(instance)
    assert items == [ArrItem("/tv/Dark", "Dark", "German", 1), ArrItem("/tv/Old Show", "Old Show", None, 2)]


def test_a_url_base_is_kept_before_the_api_path():
    with ArrStandIn("radarr", [("Up", "/m/Up (2009)", "English")], api_key=KEY) as stand_in:
        with pytest.raises(ArrUnavailable, match=r"GET /radarr/api/v3/movie: HTTP 404"):
            fetch_items(radarr(stand_in.url + "/radarr"))


def test_a_refused_api_key_says_401_and_never_shows_the_key():
    with ArrStandIn("radarr", [], api_key=KEY) as stand_in:
        wrong = "f" * 32
        with pytest.raises(ArrUnavailable, match="401 Unauthorized: the instance refused the API key") as caught:
            fetch_items(radarr(stand_in.url, api_key=wrong))
    assert wrong not in str(caught.value) and KEY not in str(caught.value)


def test_an_answer_that_is_not_json_is_unavailable():
    with ArrStandIn("radarr", [], api_key=KEY) as stand_in:
        stand_in.bad_json = True
        with pytest.raises(ArrUnavailable, match="the answer is not JSON.*<html>"):
            fetch_items(radarr(stand_in.url))


def test_json_of_another_shape_is_unavailable():
    with pytest.raises(ArrUnavailable, match="expected a JSON array of objects, got dict"):
        parse_items(b'{"message": "NotFound"}', "/api/v3/movie")
    assert parse_items(b'[{"title": "no path"}, {"path": "/m/A", "originalLanguage": "Korean"}]', "x") == [
        ArrItem("/m/A", "/m/A", None)  # a language that is no Language object is no answer
    ]


def test_items_that_are_not_objects_are_left_out_and_counted():
    body = b'[null, {"path": "/m/A", "title": "A", "originalLanguage": {"id": 21, "name": "Korean"}}, 3]'
    with capture_logs() as logs:
        assert parse_items(body, "/api/v3/movie") == [ArrItem("/m/A", "A", "Korean")]
    assert [(e["event"], e["skipped"], e["first"]) for e in logs] == [("arr_items_skipped", 2, "item 0: null")]


class _DrippingServer:
    """A server that sends ``head``, then ``drip`` ``count`` times 0.05 s apart, then
    ``tail``: every wait is short, the whole answer is not. :attr:`cut_off`: the client
    hung up before the drip ended (a send failed)."""

    def __init__(self, head: bytes, drip: bytes, count: int, tail: bytes) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cut_off = False
        self.thread = threading.Thread(target=self._serve, args=(head, drip, count, tail), daemon=True)
        self.thread.start()

    def _serve(self, head: bytes, drip: bytes, count: int, tail: bytes) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(head)
                for _ in range(count):
                    time.sleep(0.05)
                    conn.sendall(drip)
                conn.sendall(tail)
            except OSError:
                self.cut_off = True  # the client gave up mid-answer

    def close(self) -> None:
        self.thread.join(10)
        self.listener.close()


@pytest.mark.parametrize(
    "head, drip, tail",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n[", b" ", b"]"),
        (b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a", b"\r\nConnection: close\r\n\r\n[]"),
    ],
    ids=["body", "headers"],
)
def test_timeout_seconds_bounds_the_whole_request_of_a_dripping_server(head, drip, tail):
    server = _DrippingServer(head, drip, 40, tail)  # about 2 s in all, a byte every 0.05 s
    try:
        with pytest.raises(ArrUnavailable, match=r"no answer within 0.5 s \(timeout_seconds\)"):
            fetch_items(radarr(f"http://127.0.0.1:{server.port}", timeout_seconds=0.5))
    finally:
        server.close()
    assert server.cut_off  # vpod hung up at its deadline, not after the whole drip


def test_an_instance_that_is_down_is_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once the socket closes
    with pytest.raises(ArrUnavailable, match="GET /api/v3/movie: .*(refused|Connection)"):
        fetch_items(radarr(f"http://127.0.0.1:{port}"))


def test_a_slow_instance_times_out_with_a_message_naming_the_limit():
    with ArrStandIn("radarr", [("Up", "/m/Up", "English")], api_key=KEY) as stand_in:
        stand_in.delay = 3.0
        with pytest.raises(ArrUnavailable, match=r"no answer within 0.3 s \(timeout_seconds\)"):
            fetch_items(radarr(stand_in.url, timeout_seconds=0.3))


@pytest.mark.parametrize(
    "name, code",
    [
        ("Korean", "kor"), ("English", "eng"), ("Japanese", "jpn"), ("German", "ger"), ("French", "fre"),
        ("Portuguese (Brazil)", "por"), ("Spanish (Latino)", "spa"), ("Flemish", "dut"), ("Greek", "gre"),
        ("Swiss German", "gsw"), ("Khmer", "khm"), ("Persian", "per"), ("Norwegian", "nor"),
        ("Any", None), ("Original", None), ("Unknown", None), ("", None), (None, None), ("Klingonese", None),
    ],
)
def test_arr_language_names_as_iso_639_2_b(name, code):
    assert language_code(name) == code


def test_the_deepest_folder_holding_a_file_wins_by_whole_components():
    instance = radarr("http://x")
    index = FolderIndex(instance, [
        ArrItem("/movies/Up", "Up", "English"),
        ArrItem("/movies/Up (2009)", "Up 2009", "English"),
        ArrItem("/tv/Show", "Show", "Japanese"),
        ArrItem("/tv/Show/Specials", "Show specials", "Korean"),
    ])
    assert index.find(Path("/movies/Up (2009)/Up.mkv")).title == "Up 2009"
    assert index.find(Path("/movies/Up/Up.mkv")).title == "Up"
    assert index.find(Path("/tv/Show/Season 01/e1.mkv")).title == "Show"
    assert index.find(Path("/tv/Show/Specials/s1.mkv")).title == "Show specials"
    assert index.find(Path("/movies/Upside.mkv")) is None
    assert index.find(Path("/movies/Up")) is None  # the folder itself holds no file
    assert index.may_hold(Path("/movies/New (2024)/New.mkv")) and not index.may_hold(Path("/home/x/a.mkv"))


def test_path_mappings_turn_the_instances_paths_into_local_ones():
    instance = radarr(
        "http://x",
        path_mappings=(("/data/media", "/srv/media"), ("/data/media/movies", "/mnt/films"), ("D:\\Films", "/mnt/d")),
    )
    assert instance.local_path("/data/media/movies/Up (2009)") == Path("/mnt/films/Up (2009)")  # the longest remote
    assert instance.local_path("/data/media/tv/Dark") == Path("/srv/media/tv/Dark")
    assert instance.local_path("/data/mediaX/Up") == Path("/data/mediaX/Up")  # whole components only
    assert instance.local_path("D:\\Films\\Up (2009)") == Path("/mnt/d/Up (2009)")
    assert instance.local_path("/data/media") == Path("/srv/media")
    index = FolderIndex(instance, [ArrItem("/data/media/movies/Parasite (2019)", "Parasite", "Korean")])
    title = index.find(Path("/mnt/films/Parasite (2019)/Parasite.mkv"))
    assert title is not None and title.code == "kor" and title.folder == Path("/mnt/films/Parasite (2019)")
