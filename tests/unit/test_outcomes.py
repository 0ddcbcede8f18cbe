"""Status and Reason are written exactly as the documented words (issue 12 item 5)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, generate_latest

from vpod.logs import _value
from vpod.outcomes import Reason, Retry, Status
from vpod.results import FileProcessingResult


def test_a_reason_is_written_as_its_value_everywhere():
    reason = Reason.PROBE_TIMEOUT
    assert (str(reason), f"{reason}", "%s" % reason) == ("probe_timeout",) * 3
    assert json.dumps({"reason": reason}) == '{"reason": "probe_timeout"}'
    assert _value(reason) == "probe_timeout"  # the console log renderer
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (reason TEXT, state TEXT)")
    conn.execute("INSERT INTO t VALUES (?, ?)", (reason, Status.FAILED))
    assert conn.execute("SELECT reason, typeof(reason), state FROM t").fetchone() == ("probe_timeout", "text", "failed")
    registry = CollectorRegistry()
    Counter("x", "x", ["reason"], registry=registry).labels(reason).inc()
    assert 'x_total{reason="probe_timeout"} 1.0' in generate_latest(registry).decode()


def test_a_reason_read_back_is_the_member():
    assert Reason("vanished") is Reason.VANISHED and Reason.VANISHED == "vanished"
    assert len({r.value for r in Reason}) == len(Reason)


def test_skips_that_get_a_new_look_at_their_next_event():
    assert {r.value for r in Reason if r.retry is Retry.NEXT_EVENT} == {
        "vanished", "source_changed", "claimed_elsewhere", "in_progress_elsewhere", "dry_run", "outside_transcode_hours"
    }
    assert all(r.status is Status.SKIPPED for r in Reason if r.retry in (Retry.CONTENT, Retry.NEXT_EVENT))


def test_a_result_has_one_status():
    path = Path("/x.mkv")
    assert FileProcessingResult(path, success=True).status is Status.DONE
    assert FileProcessingResult(path, success=False, skipped=True, reason=Reason.EMPTY).status is Status.SKIPPED
    assert FileProcessingResult(path, success=False, reason=Reason.KILLED).status is Status.FAILED
