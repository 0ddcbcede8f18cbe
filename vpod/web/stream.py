"""``GET /api/events``: the status as server-sent events, fed by the daemon's EventBus.

The format is the WHATWG HTML standard's "Server-sent events" (section 9.2): a
``text/event-stream`` of ``event: status`` + ``data: JSON`` blocks ended by a blank
line, and comment lines (``: heartbeat``) that keep the connection and any proxy awake.

Three parts, none of which ever blocks a worker or the bus:

- :class:`Changes`: an EventBus subscriber; every event (a file queued, started or
  finished, a batch closed, a pause, a resume, a watch root lost or back) only bumps a
  counter under a lock and wakes the streams waiting on it;
- :class:`StreamSlots`: at most :data:`MAX_STREAMS` open streams per listener (the next
  client is answered 503); :meth:`StreamSlots.close` (the listener closing) ends every
  open stream within a moment, so ``vpod run`` stops in its usual time;
- :func:`status_events`: one client's stream, run in a waitress app thread (each open
  stream holds one: :mod:`vpod.http.server` adds :data:`MAX_STREAMS` threads). It sends the
  snapshot at once, then after a change at most once per :data:`MIN_INTERVAL_SECONDS`
  (changes in between are coalesced into the next), and a heartbeat comment after
  :data:`HEARTBEAT_SECONDS` of silence. While a file is in progress (the last snapshot
  sent has ``in_progress``), one more event every :data:`BUSY_INTERVAL_SECONDS`, so
  elapsed time and progress (written to the database by the worker, not an EventBus
  event) stay live; an idle daemon sends nothing but heartbeats. The daemon beginning to
  stop is sent at once (``state: stopping``). The snapshot is read in that thread, never
  on the bus. A client that went away is noticed within :data:`POLL_SECONDS` (waitress's
  ``waitress.client_disconnected``, with ``channel_request_lookahead`` set in
  :mod:`vpod.http.server`), else at the next write, and its slot is freed.

No Falcon here: the daemon's wiring imports :class:`Changes` without the HTTP stack.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable, Iterator

MAX_STREAMS = 8
"""Open ``/api/events`` streams at most, per listener; the next client gets 503."""

MIN_INTERVAL_SECONDS = 1.0
"""At most one ``status`` event per this many seconds per stream."""

BUSY_INTERVAL_SECONDS = 2.0
"""While a file is in progress, a ``status`` event at least this often (elapsed, progress)."""

POLL_SECONDS = 1.0
"""How often a waiting stream looks whether the daemon stops or the client went away."""

HEARTBEAT_SECONDS = 15.0
"""A comment line after this long without an event (below ``[http] channel_timeout_seconds``)."""

class Changes:
    """Counts the daemon's events (an EventBus subscriber, :mod:`vpod.events`); streams
    wait on it. Thread-safe; each ``on_*`` method holds the lock only to add one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._seen = 0

    def changed(self, _event: object = None) -> None:
        """Something changed: wake every waiting stream."""
        with self._cond:
            self._seen += 1
            self._cond.notify_all()

    # Every event of vpod.events is a change of the status.
    on_files_queued = on_file_started = on_file_finished = on_batch_closed = changed
    on_processing_paused = on_processing_resumed = on_watch_root_lost = on_watch_root_restored = changed

    @property
    def seen(self) -> int:
        """How many changes so far."""
        with self._cond:
            return self._seen

    def wait(self, after: int, timeout: float, closed: Callable[[], bool]) -> int:
        """Wait up to ``timeout`` seconds for a change beyond ``after`` (or ``closed()``);
        returns the count of changes now."""
        with self._cond:
            self._cond.wait_for(lambda: self._seen != after or closed(), timeout=max(0.0, timeout))
            return self._seen

    def wake_all(self) -> None:
        """Wake every waiting stream without a change (a listener closing)."""
        with self._cond:
            self._cond.notify_all()


class StreamSlots:
    """The open streams of one listener: at most ``limit``; :meth:`close` ends them all."""

    def __init__(self, changes: Changes, limit: int = MAX_STREAMS) -> None:
        self.changes = changes
        self.limit = limit
        self._lock = threading.Lock()
        self._ended = threading.Condition(self._lock)
        self._open = 0
        self._closed = False
        self._shared: tuple[object, float, bytes] | None = None  # (what it shows, monotonic time, event)

    @property
    def closed(self) -> bool:
        """The listener is closing: streams end."""
        return self._closed

    @property
    def open(self) -> int:
        """Streams open now."""
        with self._lock:
            return self._open

    def take(self) -> bool:
        """Take a slot for a new stream; False when all are taken or the listener closes."""
        with self._lock:
            if self._closed or self._open >= self.limit:
                return False
            self._open += 1
            return True

    def status_event(self, seen: object, snapshot: Callable[[], dict[str, Any]], now: float, fresh: float) -> bytes:
        """The ``status`` event for ``seen`` (the changes counted, and whether the daemon
        stops): the one another stream of this listener made for the same ``seen`` less
        than ``fresh`` seconds ago, else a new
        one (the snapshot read here): eight open pages cost one database read per change."""
        with self._lock:
            shared = self._shared
        if shared is not None and shared[0] == seen and now - shared[1] < fresh:
            return shared[2]
        event = _status_event(snapshot)
        if event.startswith(b"event: status"):
            with self._lock:
                self._shared = (seen, now, event)
        return event

    def give_back(self) -> None:
        """A stream ended: free its slot."""
        with self._lock:
            self._open -= 1
            self._ended.notify_all()

    def wait_closed(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until no stream is open (after :meth:`close`:
        the listener closes its sockets only once no stream writes any more); True when none is."""
        with self._ended:
            return self._ended.wait_for(lambda: self._open == 0, timeout=timeout)

    def close(self) -> None:
        """End every open stream (they return at their next wake-up, at once) and refuse new ones."""
        self._closed = True
        self.changes.wake_all()


def status_events(
    slots: StreamSlots, snapshot: Callable[[], dict[str, Any]], *, stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic, min_interval: float = MIN_INTERVAL_SECONDS,
    heartbeat: float = HEARTBEAT_SECONDS, busy_interval: float = BUSY_INTERVAL_SECONDS,
    gone: Callable[[], bool] | None = None,
) -> Iterator[bytes]:
    """One client's stream (a slot already taken; given back when the iterator ends or
    is closed): a ``retry`` hint, the snapshot at once, then one ``status`` event per
    change (coalesced, at most one per ``min_interval`` seconds), one every
    ``busy_interval`` seconds while the last one sent had files in progress, and a
    heartbeat comment after ``heartbeat`` seconds of silence; one more event at once when
    ``stop`` (the daemon's) is set. Ends when ``slots`` close (the listener closes, at
    the end of the daemon's shutdown) or ``gone()`` (the client went away) is true. A
    snapshot that cannot be read (the database busy) is sent as an ``error`` event and
    tried again at the next change."""
    changes = slots.changes
    stop_told = False  # the daemon began to stop: one more event tells the page

    def ended() -> bool:
        return gone is not None and gone()

    def stopping() -> bool:
        return stop is not None and stop.is_set() and not stop_told

    def woken() -> bool:
        return slots.closed or stopping()

    try:
        yield b"retry: 2000\n\n"
        sent_at = -min_interval
        wanted = True  # send the snapshot at once
        busy = False  # the last event sent showed a file in progress
        seen = changes.seen
        quiet_since = clock()
        while not ended():
            now = clock()
            if slots.closed:  # the listener closes (the daemon's last step): tell its state if not yet
                if stop is not None and stop.is_set() and not stop_told:
                    yield _status_event(snapshot)
                break
            if stopping():
                stop_told = wanted = True
                sent_at = -min_interval  # the stop is told at once
            if busy and not wanted and now - sent_at >= busy_interval:
                wanted = True
            if wanted and now - sent_at >= min_interval:
                wanted = False
                sent_at = now
                quiet_since = now
                event = slots.status_event((seen, stop_told, int(now / busy_interval) if busy else 0),
                                           snapshot, now, min_interval)
                busy = b'"in_progress":[{' in event
                yield event
                continue
            if now - quiet_since >= heartbeat:
                quiet_since = now
                yield b": heartbeat\n\n"
                continue
            deadline = quiet_since + heartbeat
            if busy:
                deadline = min(deadline, sent_at + busy_interval)
            if wanted:
                deadline = min(deadline, sent_at + min_interval)
                time.sleep(max(0.0, min(deadline - now, 0.25)))  # coalescing: wait out the interval
                continue
            latest = changes.wait(seen, min(deadline - now, POLL_SECONDS), woken)
            if latest != seen:
                seen = latest
                wanted = True
    finally:
        slots.give_back()


def _status_event(snapshot: Callable[[], dict[str, Any]]) -> bytes:
    try:
        body = json.dumps(snapshot(), separators=(",", ":"))
    except Exception as exc:  # noqa: BLE001  the stream goes on; the next change tries again
        error = json.dumps({"ok": False, "reason": "snapshot_failed", "error": f"{type(exc).__name__}: {exc}"})
        return f"event: error\ndata: {error}\n\n".encode()
    # json.dumps escapes line breaks inside strings: the data is one line.
    return f"event: status\ndata: {body}\n\n".encode()
