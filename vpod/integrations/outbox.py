"""A bounded queue of calls to other programs, served by one thread, with retries.

Whoever publishes (a worker that finished a file, the main loop closing a batch) only
appends to the queue and returns: no network wait ever happens on its thread. The
outbox's own thread makes each call; one that fails with a retryable error is tried
again after ``retry_seconds``, doubling up to ``max_retry_seconds``, at most
``attempts`` times in all. Memory is bounded: at most ``capacity`` calls wait; one more
is dropped (``queue_full``; or a waiting call of lower :attr:`Call.rank` is dropped in its
place), and so is a call whose tries are used up (``undelivered``)
and what is still queued when the daemon stops and ``close`` runs out of time
(``shutdown``): each drop is counted (``on_drop``) and logged.

Log lines (the README's "Log events" table): ``integration_notified`` (info) when a call
succeeded, ``integration_failed`` (warning) when it is dropped, ``integration_skipped``
(debug) when there was nothing to do (an *arr that does not hold the file). Each names
the ``target``, the ``action`` and the ``attempts`` made; never a token or URL secret.
Calls with the same :attr:`Call.key` queued while one waits are made once (joined, see
:meth:`Outbox.put`); that call's lines carry ``coalesced``: how many calls joined it.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Hashable

import structlog

from vpod.integrations.http_call import CallFailed


class Skipped(Exception):
    """Raised by a call that found nothing to do (``str()``: why); not a failure."""


@dataclass(frozen=True)
class Call:
    """One thing to tell another program.

    Attributes:
        target: who is called, for logs (``sonarr "tv"``, ``notify url 1 (json)``).
        kind: the kind of target, the ``kind`` label of the metrics (``sonarr``,
            ``radarr``, ``jellyfin``, ``emby``, ``plex``, ``apprise``).
        action: what is asked (``RescanSeries``, ``media updated``, ``file_failed``).
        send: makes the call; returns a detail for the log (or ``None``); raises
            :class:`~vpod.integrations.http_call.CallFailed` or :class:`Skipped`.
        fields: more log fields (the file's path).
        rank: how much the call is worth keeping when the queue is full: a call finding
            the queue full evicts the oldest waiting call of a lower rank (dropped,
            ``queue_full``), else it is dropped itself (a batch summary outranks one
            file's failure, :mod:`vpod.integrations.notifications`).
        key: calls with the same ``key`` (not ``None``) are one call: one queued while
            another with its key waits (not yet started) joins it (:attr:`merge`) and is
            counted in the ``coalesced`` field of the waiting call's log line.
        merge: ``merge(later)``: the waiting call that also does what ``later`` asks
            (more paths in one request); ``None``: ``later`` asks the same, nothing to add.
        items: what the call is about (the renamed files), for :attr:`merge`.
    """

    target: str
    kind: str
    action: str
    send: Callable[[], str | None]
    fields: dict[str, object] = field(default_factory=dict)
    rank: int = 0
    key: Hashable | None = None
    merge: Callable[[Call], Call] | None = None
    items: tuple[object, ...] = ()


@dataclass(frozen=True)
class RetryRule:
    """Tries per call and the waits between them (seconds)."""

    attempts: int = 3
    retry_seconds: float = 2.0
    max_retry_seconds: float = 60.0
    per_minute: int | None = None  # calls started in any 60 s at most; None: no limit

    def wait(self, failed_attempts: int) -> float:
        """The wait after ``failed_attempts`` failed tries: ``retry_seconds`` doubled
        per earlier failure, at most ``max_retry_seconds``."""
        return min(self.retry_seconds * 2.0 ** (failed_attempts - 1), self.max_retry_seconds)


class Outbox:
    """A bounded queue of :class:`Call` and the thread that makes them, in order.

    Args:
        name: the thread's name suffix (``vpod-<name>``).
        capacity: calls waiting at most.
        rule: retries and rate (:class:`RetryRule`); :attr:`rule` may be replaced
            (a reload) and applies from the next call.
        on_drop: ``(call, reason)`` for each dropped call (``queue_full``,
            ``undelivered``, ``refused``, ``shutdown``).
        on_outcome: ``(call, outcome)`` for each call that ended: ``notified``,
            ``failed`` or ``skipped`` (the metrics).
        clock: monotonic seconds.
        hold_seconds: how long a call with a :attr:`Call.key` stays in the queue before
            it is made, so that the same call for the next files joins it (a season
            pack's renames come a fraction of a second apart; without a hold each one's
            call is made before the next arrives). ``0``: made at once (``vpod process``).
            Closing ends the hold.
    """

    def __init__(
        self,
        name: str,
        *,
        capacity: int,
        rule: RetryRule,
        on_drop: Callable[[Call, str], None] = lambda call, reason: None,
        on_outcome: Callable[[Call, str], None] = lambda call, outcome: None,
        clock: Callable[[], float] = time.monotonic,
        hold_seconds: float = 0.0,
    ) -> None:
        self.name = name
        self.hold_seconds = hold_seconds
        self.capacity = capacity
        self.rule = rule
        self.on_drop = on_drop
        self.on_outcome = on_outcome
        self.clock = clock
        self._queue: collections.deque[Call] = collections.deque()
        self._coalesced: dict[int, int] = {}  # id() of a waiting call: how many later calls joined it
        self._queued_at: dict[int, float] = {}  # id() of a waiting call: when it (or what it joined) was put
        self._changed = threading.Condition()
        self._deadline: float | None = None  # set by close(): stop waiting then
        self._busy = False
        self._started: collections.deque[float] = collections.deque()  # call start times, for per_minute
        self._thread: threading.Thread | None = None
        self.log = structlog.get_logger("vpod")

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"vpod-{self.name}", daemon=True)
            self._thread.start()

    def put(self, call: Call) -> bool:
        """Queue ``call``; ``False`` when it is dropped: ``queue_full`` when ``capacity``
        calls wait already and none of them ranks lower (:attr:`Call.rank`; the oldest
        lower one is dropped instead, ``queue_full``), ``shutdown`` once the outbox is
        closing. A call whose :attr:`Call.key` a waiting call has joins that call
        (``True``). Never blocks."""
        evicted: Call | None = None
        with self._changed:
            closing = self._deadline is not None
            if not closing and call.key is not None and self._join(call):
                return True
            if not closing and len(self._queue) >= self.capacity:
                evicted = self._lowest_below(call.rank)
                if evicted is not None:
                    self._queue.remove(evicted)
                    self._coalesced.pop(id(evicted), None)
                    self._queued_at.pop(id(evicted), None)
            if not closing and len(self._queue) < self.capacity:
                self._queue.append(call)
                self._queued_at[id(call)] = self.clock()
                self._changed.notify_all()
                waiting = 0
            else:
                waiting = len(self._queue)
        if evicted is not None:
            self._drop(evicted, "queue_full", 0,
                       f"{self.capacity} calls waited; a more valuable one ({call.action}) took its place")
        if closing:
            self._drop(call, "shutdown", 0, "vpod is stopping")
            return False
        if waiting:
            self._drop(call, "queue_full", 0, f"{waiting} calls wait already (at most {self.capacity})")
            return False
        return True

    def _join(self, call: Call) -> bool:
        """Merge ``call`` into the waiting call with its key, if any (lock held)."""
        for index, waiting in enumerate(self._queue):
            if waiting.key == call.key:
                joined = waiting.merge(call) if waiting.merge is not None else waiting
                self._queue[index] = joined
                self._coalesced[id(joined)] = self._coalesced.pop(id(waiting), 0) + 1
                self._queued_at[id(joined)] = self._queued_at.pop(id(waiting), self.clock())
                return True
        return False

    def _lowest_below(self, rank: int) -> Call | None:
        """The oldest waiting call of the lowest rank under ``rank`` (lock held)."""
        lowest: Call | None = None
        for waiting in self._queue:
            if waiting.rank < rank and (lowest is None or waiting.rank < lowest.rank):
                lowest = waiting
        return lowest

    def pending(self) -> int:
        """Calls queued or in progress."""
        with self._changed:
            return len(self._queue) + self._busy

    def drain(self, timeout_seconds: float) -> bool:
        """Wait until nothing is queued nor in progress, at most ``timeout_seconds``;
        True when drained (``vpod notify test``)."""
        end = self.clock() + timeout_seconds
        with self._changed:
            while self._queue or self._busy:
                left = end - self.clock()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def close(self, timeout_seconds: float) -> None:
        """Stop taking calls; make the queued ones for at most ``timeout_seconds``
        (retries wait no longer than that); drop what is left (``shutdown``)."""
        with self._changed:
            self._deadline = self.clock() + timeout_seconds
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_seconds + 1.0)  # a call in progress ends by its own timeout
        with self._changed:
            left = list(self._queue)
            self._queue.clear()
            self._coalesced.clear()
            self._queued_at.clear()
        for call in left:
            self._drop(call, "shutdown", 0, "vpod stopped before it was sent")

    # -- the thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._queue and self._deadline is None:
                    self._changed.wait()
                if not self._queue:
                    return  # closing and drained
                held = self._held_for(self._queue[0])
                if held > 0:
                    self._changed.wait(held)  # the same call for the next files may join it
                    continue
                call = self._queue.popleft()
                coalesced = self._coalesced.pop(id(call), 0)
                self._queued_at.pop(id(call), None)
                self._busy = True
            try:
                self._deliver(call, coalesced)
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()

    def _held_for(self, call: Call) -> float:
        """Seconds ``call`` (the head of the queue) stays held (lock held): its
        :attr:`hold_seconds` since it was put, for a call with a key; none once closing."""
        if call.key is None or self.hold_seconds <= 0 or self._deadline is not None:
            return 0.0
        return self._queued_at.get(id(call), 0.0) + self.hold_seconds - self.clock()

    def _deliver(self, call: Call, coalesced: int = 0) -> None:
        if coalesced:  # the log lines of this call say how many calls it stands for
            call = Call(call.target, call.kind, call.action, call.send, {**call.fields, "coalesced": coalesced},
                        call.rank, call.key, call.merge, call.items)
        rule = self.rule
        attempts = 0
        while True:
            if not self._wait_for_rate(rule):
                self._drop(call, "shutdown", attempts, "vpod stopped before it was sent")
                return
            attempts += 1
            try:
                detail = call.send()
            except Skipped as exc:
                self.log.debug("integration_skipped", target=call.target, action=call.action, why=str(exc), **call.fields)
                self.on_outcome(call, "skipped")
                return
            except CallFailed as exc:
                if not exc.retryable:
                    self._drop(call, "refused", attempts, str(exc))
                    return
                if attempts >= rule.attempts:
                    self._drop(call, "undelivered", attempts, str(exc))
                    return
                self.log.debug(
                    "integration_retry", target=call.target, action=call.action, attempts=attempts, error=str(exc),
                    **call.fields,
                )
                if not self._sleep(rule.wait(attempts)):
                    self._drop(call, "shutdown", attempts, f"vpod stopped while it waited to retry: {exc}")
                    return
                continue
            except Exception as exc:  # a bug in one call must not stop the others
                self.log.exception("integration_failed", target=call.target, action=call.action, attempts=attempts,
                                   error=f"{type(exc).__name__}: {exc}", **call.fields)
                self.on_drop(call, "error")
                self.on_outcome(call, "failed")
                return
            self.log.info(
                "integration_notified", target=call.target, action=call.action, attempts=attempts,
                **({"detail": detail} if detail else {}), **call.fields,
            )
            self.on_outcome(call, "notified")
            return

    def _wait_for_rate(self, rule: RetryRule) -> bool:
        """Wait until one more call fits ``rule.per_minute``; False when closing ran out."""
        if rule.per_minute is None:
            return self._sleep(0.0)
        while True:
            now = self.clock()
            while self._started and now - self._started[0] >= 60.0:
                self._started.popleft()
            if len(self._started) < rule.per_minute:
                self._started.append(now)
                return True
            if not self._sleep(self._started[0] + 60.0 - now):
                return False

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds``, less when :meth:`close` sets a deadline before then; False
        when the deadline has passed."""
        end = self.clock() + seconds
        with self._changed:
            while True:
                now = self.clock()
                limit = end if self._deadline is None else min(end, self._deadline)
                if self._deadline is not None and now >= self._deadline:
                    return False
                if now >= limit:
                    return True
                self._changed.wait(limit - now if math.isfinite(limit) else None)

    def _drop(self, call: Call, reason: str, attempts: int, error: str) -> None:
        self.log.warning(
            "integration_failed", target=call.target, action=call.action, attempts=attempts, dropped=reason,
            error=error, **call.fields,
        )
        self.on_drop(call, reason)
        self.on_outcome(call, "failed")
