"""The page and its charts as rendered text (issue 17 items 1, 2, 4, 5): hostile names
escaped, nothing inline the Content-Security-Policy would block, relative URLs only, the
charts well-formed SVG. The browser tests (tests/integration/test_web_page.py) check the
same in chromium; these run without one."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

from vpod.web import charts
from vpod.web.page import render_page

HOSTILE = "/m/<img src=x onerror=alert(1)>\"'.mkv"


def snapshot() -> dict:
    return {
        "state": "paused", "uptime_seconds": 3725.0, "version": "0.1.0", "queue_depth": 2, "workers": 2,
        "paused": {"path": HOSTILE, "error": "<script>alert(2)</script>", "since": 1.0},
        "in_progress": [{"path": "/m/a\udcff.mkv", "worker": "worker-1", "library": "<b>lib</b>",
                         "elapsed_seconds": 4.25, "attempt": 1, "progress_percent": 42.4}],
        "counts": {"queued": 2, "processing": 1, "done": 7, "failed": 1, "skipped": 0},
        "library_counts": {"<b>lib</b>": {"done": 7, "failed": 1}},
        "recent_failures": [{"path": HOSTILE, "library": "<b>lib</b>", "reason": "not_media",
                             "error": "ffprobe: <b>Invalid data</b>", "at": 0.0, "id": 17}],
        "recent_batches": [{"batch_id": "b1", "started_at": 0.0, "total_files": 8, "success_count": 7,
                            "unchanged_count": None, "fail_count": 1, "skipped_count": 0,
                            "total_duration_seconds": 12.5, "stopped_early": True}],
        "watch_paths": ["/m", "/gone"], "libraries": [{"name": "<b>lib</b>", "path": "/m"}],
        "unwatched": [{"path": "/gone", "reason": "missing"}],
        "nodes": [{"node": "a", "alive": True, "doing": []}, {"node": "<i>b</i>", "alive": False, "doing": []}],
    }


def history() -> list[dict]:
    rows = [{"hour": 3600 * h, "done": 0, "failed": 0, "skipped": 0, "unchanged": 0, "mean_seconds": None}
            for h in range(24)]
    rows[5].update(done=3, failed=1, mean_seconds=2.5)
    rows[6].update(unchanged=2, skipped=1, mean_seconds=0.5)
    return rows


class Tags(HTMLParser):
    """Every start tag with its attributes, as a browser's parser sees them."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_every_value_is_escaped_and_nothing_is_inline() -> None:
    text = render_page(snapshot(), history(), csrf='tok"en')
    assert "<img" not in text and "<script>alert" not in text and "<b>" not in text and "<i>" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;&quot;&#x27;.mkv" in text
    assert 'content="tok&quot;en"' in text
    tags = Tags(text).tags
    assert {t for t, _ in tags}.isdisjoint({"img", "b", "i", "style", "base", "iframe", "object"})
    assert not [(t, a) for t, a in tags for name in a if name.startswith("on") or name == "style"]
    assert re.findall(r"<script[^>]*>(.*?)</script>", text, re.S) == [""]  # only the static file, no body
    assert text.encode("utf-8", "replace")  # a lone surrogate from a name cannot break the answer


def test_every_url_is_relative() -> None:
    text = render_page(snapshot(), history())
    urls = re.findall(r'(?:href|src|action)="([^"]*)"', text)
    assert urls and all(not u.startswith(("/", "http:", "https:", "//")) for u in urls), urls
    assert "<base" not in text
    assert 'href="api/files/17/events"' in text


def test_the_page_shows_each_part_of_the_state() -> None:
    text = render_page(snapshot(), history())
    for shown in ("paused", "1h 2m 5s", "0.1.0", "1 busy of 2", "4.2 s", "42 %", "not_media", "stopped early",
                  "12.5 s", "not watched: missing", "Resume", "Retry all failed"):
        assert shown in text, shown
    assert 'id="nodes-section" hidden' not in text  # two nodes: shown
    gone = {**snapshot(), "recent_failures": [{**snapshot()["recent_failures"][0], "gone": True}]}
    assert "no failures" in render_page(gone, history())  # deleted since: nothing to retry
    one = {**snapshot(), "nodes": [{"node": "a", "alive": True, "doing": []}]}
    assert 'id="nodes-section" hidden' in render_page(one, history())


def test_charts_are_well_formed_svg_with_a_bar_per_outcome() -> None:
    rows = history()
    bars = ET.fromstring(charts.files_per_hour(rows))
    ns = {"s": "http://www.w3.org/2000/svg"}
    classes = [r.get("class") for r in bars.iterfind(".//s:g/s:rect", ns)]
    assert sorted(classes) == ["chart-done", "chart-failed", "chart-skipped", "chart-unchanged"]
    line = ET.fromstring(charts.seconds_per_file(rows))
    assert len(line.findall(".//s:circle", ns)) == 2 and line.find(".//s:polyline", ns) is not None
    empty = [{**r, "done": 0, "failed": 0, "skipped": 0, "unchanged": 0, "mean_seconds": None} for r in rows]
    assert "no files in the last 24 hours" in charts.files_per_hour(empty)
    assert "style" not in charts.files_per_hour(rows) + charts.seconds_per_file(rows)


def test_fix17_said_node_column_retry_by_id_and_retry_all_hidden():
    """fix17 defects 5 (the answer of a form POST at the top), 10 (Retry by id), 16 (a
    Node column with several nodes; "Retry all failed" hidden without failures)."""
    snap = snapshot()
    snap["recent_batches"][0]["node"] = "<i>b</i>"
    text = render_page(snap, history(), said="Done: queued again.")
    assert '<p id="action-result" class="action-result" role="status">Done: queued again.</p>' in text
    assert "<th>Node</th>" in text and "<td>&lt;i&gt;b&lt;/i&gt;</td>" in text
    assert '<input type="hidden" name="id" value="17">' in text
    assert 'id="retry-all">' in text
    quiet = {**snapshot(), "recent_failures": [], "nodes": []}
    text = render_page(quiet, history())
    assert 'id="retry-all" hidden>' in text and "<th>Node</th>" not in text
    assert '<p id="action-result" class="action-result" role="status" hidden></p>' in text


def test_an_encode_shows_its_percent_speed_fps_and_time_left_and_a_remux_its_percent() -> None:
    """Issue 18 item 3 (round 3): the Progress cell of an encode (speed or fps reported)
    says how fast and how long; a remux or header edit keeps its percent alone."""
    from vpod.web.page import progress_text

    encode = {"progress_percent": 43.2, "eta_seconds": 3242, "speed": 0.8213, "fps": 24.4}
    assert progress_text(encode) == "43 %, 0.82x, 24 fps, 54m 2s left"
    assert progress_text({**encode, "fps": 7.26, "eta_seconds": None}) == "43 %, 0.82x, 7.3 fps"
    assert progress_text({"progress_percent": 43.2, "eta_seconds": 12, "speed": None, "fps": None}) == "43 %"
    assert progress_text({"progress_percent": None, "speed": None, "fps": None}) == ""
    snap = snapshot()
    snap["in_progress"] = [{**snap["in_progress"][0], **encode}]
    assert "<td>43 %, 0.82x, 24 fps, 54m 2s left</td>" in render_page(snap, history(), csrf="t")
