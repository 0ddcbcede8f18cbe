"""Notifications with Apprise (``[notify]``): what is sent, and the queues that send it.

Apprise (https://github.com/caronc/apprise) turns one URL into a message on ntfy,
Gotify, Discord, Telegram, e-mail, Pushover, a JSON webhook (``json://host/path``) and
many more. Each configured URL gets its own :class:`~vpod.integrations.outbox.Outbox`
(thread, bounded queue, retries, ``max_per_minute``): a dead target delays and drops only
its own messages, never another URL's, never a worker. A message is sent to each URL
once; a failed send is retried for that URL alone, so no target gets it twice from vpod.

Events (``[notify] events``), from :mod:`vpod.events`:

- ``file_failed``: a file failed for good (:class:`~vpod.events.FileFinished`, not
  retrying, status ``failed``);
- ``processing_paused``: :class:`~vpod.events.ProcessingPaused` (``on_error = "fail"``);
- ``watch_folder_lost`` / ``watch_folder_restored``: :class:`~vpod.events.WatchRootLost`
  / :class:`~vpod.events.WatchRootRestored`;
- ``batch_summary``: one message per :class:`~vpod.events.BatchClosed` window, with its
  counts and its failures (at most :data:`MAX_LISTED` listed).

Apprise is imported only when a URL is configured (about 0.13 s at import, 0.37 s once
the first URL loads its plugins, and 22 MB of an idle daemon's RSS; docs/architecture.md). Its
own log records are kept off vpod's output (they may name a target); the warning of a
failed send becomes the ``error`` of vpod's ``integration_failed`` line with every part
of the URL (user, password, host, path, query values) masked.
"""

from __future__ import annotations

import functools
import logging
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable

import structlog

from vpod import __version__
from vpod.events import BatchClosed, FileFinished, ProcessingPaused, WatchRootLost, WatchRootRestored
from vpod.integrations.http_call import CallFailed
from vpod.integrations.outbox import Call, Outbox, RetryRule
from vpod.integrations.settings import NotifyConfig
from vpod.outcomes import Status
from vpod.results import BatchResult, FileProcessingResult, display_path, one_line

MAX_LISTED = 20
"""Failures listed by name in a batch summary; more are counted."""

MAX_ERROR_CHARS = 300
"""A failure's error is cut to this many characters in a message."""


@dataclass(frozen=True)
class Message:
    """One notification: ``event`` (a name of ``[notify] events``, or ``test``), its
    ``title`` and plain-text ``body``, and ``level``: Apprise's notify type (``info``,
    ``success``, ``warning``, ``failure``)."""

    event: str
    title: str
    body: str
    level: str = "info"


def _error(result: FileProcessingResult) -> str:
    text = one_line((result.error or "").splitlines()[0] if result.error else "")
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def file_failed_message(result: FileProcessingResult, node: str) -> Message:
    """A file failed for good."""
    return Message(
        "file_failed", f"vpod: failed: {result.path.name}",
        f"{display_path(result.path)}\nreason: {result.reason or 'error'}\n{_error(result)}\nnode: {node}",
        "failure",
    )


def paused_message(result: FileProcessingResult, node: str) -> Message:
    """Processing paused after ``result`` failed under ``on_error = "fail"``."""
    return Message(
        "processing_paused", "vpod: processing paused",
        f'{display_path(result.path)} failed and on_error = "fail": no file is started until `vpod resume`.\n'
        f"reason: {result.reason or 'error'}\n{_error(result)}\nnode: {node}",
        "failure",
    )


def root_lost_message(event: WatchRootLost, node: str) -> Message:
    """A watched folder was deleted, moved away or replaced."""
    how = "moved away or replaced" if event.moved else "deleted"
    library = f" (library {event.library})" if event.library else ""
    return Message(
        "watch_folder_lost", "vpod: watch folder lost",
        f"{display_path(event.root)}{library} was {how}; vpod watches it again when it comes back.\nnode: {node}",
        "warning",
    )


def root_restored_message(event: WatchRootRestored, node: str) -> Message:
    """A lost watched folder is back and watched."""
    library = f" (library {event.library})" if event.library else ""
    return Message(
        "watch_folder_restored", "vpod: watch folder restored",
        f"{display_path(event.root)}{library} is back and watched.\nnode: {node}", "success",
    )


def batch_message(batch: BatchResult, node: str) -> Message:
    """One batch window's counts and its failures (the first :data:`MAX_LISTED`)."""
    counts = batch.counts()
    failed = [r for r in batch.results if r.status is Status.FAILED]
    lines = [
        f"{_files(counts['total_files'])}: {counts['success_count']} done, {counts['fail_count']} failed, "
        f"{counts['skipped_count']} skipped in {batch.total_duration_seconds:.1f} s"
        + (' (stopped early: on_error = "fail")' if batch.stopped_early else ""),
    ]
    if failed:
        lines.append("failed:")
        lines += [f"- {display_path(r.path)}: {r.reason or 'error'}: {_error(r)}" for r in failed[:MAX_LISTED]]
        if len(failed) > MAX_LISTED:
            lines.append(f"... and {len(failed) - MAX_LISTED} more (vpod status)")
    lines.append(f"batch {batch.batch_id}, node: {node}")
    title = f"vpod: batch: {counts['fail_count']} failed" if failed else f"vpod: batch: {counts['success_count']} done"
    return Message("batch_summary", title, "\n".join(lines), "failure" if failed else "success")


def _files(count: int) -> str:
    return "1 file" if count == 1 else f"{count} files"


def test_message(node: str) -> Message:
    """What ``vpod notify test`` sends."""
    return Message("test", "vpod: test notification", f"vpod {__version__} on {node} can reach this target.", "info")


def rank(message: Message) -> int:
    """How much ``message`` is worth keeping when its queue is full (:attr:`Call.rank`):
    one file's failure 0, anything else (a batch summary, which lists the failures too;
    processing paused; a watch folder lost or restored; a test) 1. A full queue drops its
    oldest file failure for a message of rank 1, never the other way round."""
    return 0 if message.event == "file_failed" else 1


def url_label(number: int, url: str) -> str:
    """How logs name the ``number``-th URL: ``notify url 2 (ntfys)``; never the URL,
    whose every part may be a secret (an ntfy topic is its host)."""
    return f"notify url {number} ({url.split('://', 1)[0]})"


def _secrets(url: str) -> list[str]:
    """The parts of ``url`` to mask in a message: user, password, host, each path
    segment and each query value of 3 characters or more, longest first."""
    pieces: list[str | None]
    try:
        parts = urllib.parse.urlsplit(url)
        pieces = [parts.username, parts.password, parts.hostname, *parts.path.split("/")]
        pieces += [v for values in urllib.parse.parse_qs(parts.query).values() for v in values]
    except ValueError:
        pieces = []
    return sorted({p for p in pieces if p and len(p) >= 3} | {url}, key=len, reverse=True)


class _Captured(logging.Handler):
    """Keeps Apprise's log records off vpod's output; with Apprise before 2.3 (no
    per-call ``log_callback``; one URL is sent on the calling thread) it also keeps the
    records of the thread that sends, so a failed send can say why."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        records = getattr(self.local, "records", None)
        if records is not None:
            records.append(record.getMessage())

    def start(self) -> None:
        self.local.records = []

    def take(self) -> list[str]:
        records: list[str] = getattr(self.local, "records", None) or []
        self.local.records = None
        return records


@functools.lru_cache(maxsize=1)
def _apprise() -> tuple[Any, _Captured]:
    """The apprise module, imported on first use, with its log records captured (never
    written to vpod's output)."""
    import apprise

    captured = _Captured()
    logger = logging.getLogger("apprise")
    logger.handlers = [captured]
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    return apprise, captured


@functools.lru_cache(maxsize=1)
def _has_log_callback(apprise: Any) -> bool:
    """True when ``Apprise.notify`` takes ``log_callback`` (Apprise 2.3 and later)."""
    import inspect

    return "log_callback" in inspect.signature(apprise.Apprise.notify).parameters


def url_problem(number: int, url: str) -> str | None:
    """Why Apprise cannot use ``url`` (the ``number``-th), or ``None``: a scheme it knows
    no service for, or a URL of a known service it cannot read (a part missing or
    malformed). Names the number and scheme only, never the URL. Imports Apprise."""
    apprise, _ = _apprise()
    scheme = url.split("://", 1)[0].lower()
    try:
        from apprise.manager_plugins import NotificationManager

        known: bool | None = scheme in NotificationManager()  # type: ignore[no-untyped-call]
    except (ImportError, TypeError):  # an Apprise without that manager: only add() can tell
        known = None
    if known is False:
        return f"Apprise knows no service {scheme}:// (https://github.com/caronc/apprise/wiki)"
    if not apprise.Apprise().add(url):
        return (f"Apprise cannot read this {scheme}:// URL: a part is missing or malformed "
                f"(its page on https://github.com/caronc/apprise/wiki shows the form)")
    return None


class AppriseTarget:
    """One Apprise URL.

    Raises:
        ValueError: from the constructor, when Apprise knows no service for ``url`` or
            cannot read it (:func:`url_problem`; the message names its scheme only,
            not the label: the caller adds it).
    """

    def __init__(self, number: int, url: str) -> None:
        apprise, _ = _apprise()
        self.label = url_label(number, url)
        self._secrets = _secrets(url)
        self._apprise = apprise.Apprise()
        if not self._apprise.add(url):
            raise ValueError(url_problem(number, url) or "Apprise cannot read this URL")

    def send(self, message: Message) -> None:
        """Deliver ``message``.

        Raises:
            CallFailed: Apprise reported a failure (retryable; ``str()`` holds Apprise's
                warning with the URL's parts masked).
        """
        apprise, captured = _apprise()
        per_call: list[str] = []
        kwargs: dict[str, Any] = {}
        if _has_log_callback(apprise):
            # Apprise >= 2.3 sends from its own worker threads: its per-call log callback
            # hands this call's records (this URL's only) to this call, whichever thread
            # logged them (apprise.Apprise.notify, "log_callback").
            kwargs = {"log_callback": lambda entry, _service: per_call.append(str(entry.message)),
                      "log_level": logging.WARNING}
        captured.start()
        try:
            ok = self._apprise.notify(
                body=message.body, title=message.title, notify_type=apprise.NotifyType(message.level),
                body_format=apprise.NotifyFormat.TEXT, **kwargs,
            )
        except Exception as exc:  # a plugin's bug: its text may hold the URL, masked here
            raise CallFailed(self.mask(f"Apprise failed: {type(exc).__name__}: {exc}"), retryable=True) from None
        finally:
            records = per_call or captured.take()
        if not ok:
            raise CallFailed(self.mask("; ".join(records[-2:]) or "Apprise reported a failure"), retryable=True)

    def mask(self, text: str) -> str:
        """``text`` with every part of the URL replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class Notifier:
    """Event subscriber: turns events into :class:`Message` and queues one call per URL.

    Args:
        config: ``[notify]``; without URLs the notifier does nothing and Apprise is
            not imported.
        node: this node's name, in every message.
        on_drop: ``(call, reason)`` per dropped message (the metrics).
        on_outcome: ``(call, outcome)`` per ended call (the metrics).
    """

    def __init__(
        self,
        config: NotifyConfig,
        *,
        node: str,
        on_drop: Callable[[Call, str], None] = lambda call, reason: None,
        on_outcome: Callable[[Call, str], None] = lambda call, outcome: None,
    ) -> None:
        self.node = node
        self.on_drop = on_drop
        self.on_outcome = on_outcome
        self.log = structlog.get_logger("vpod")
        self.config = config
        self.targets: list[tuple[AppriseTarget, Outbox]] = self._targets(config)

    def _targets(self, config: NotifyConfig) -> list[tuple[AppriseTarget, Outbox]]:
        targets = []
        for number, url in enumerate(config.urls, 1):
            try:
                target = AppriseTarget(number, url)
            except ValueError as exc:
                self.log.error("notify_url_invalid", target=url_label(number, url), error=str(exc))
                continue
            outbox = Outbox(
                f"notify-{number}", capacity=config.queue_size, rule=_rule(config),
                on_drop=self.on_drop, on_outcome=self.on_outcome,
            )
            targets.append((target, outbox))
        return targets

    def start(self) -> None:
        """Start each URL's thread."""
        for _, outbox in self.targets:
            outbox.start()

    def close(self, timeout_seconds: float | None = None) -> None:
        """Send what is queued for at most ``timeout_seconds`` (default ``[notify]
        timeout_seconds``), every URL at once; drop the rest (counted)."""
        timeout = self.config.timeout_seconds if timeout_seconds is None else timeout_seconds
        closers = [threading.Thread(target=o.close, args=(timeout,), daemon=True) for _, o in self.targets]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join(timeout + 2.0)

    def reconfigure(self, config: NotifyConfig) -> None:
        """Apply a reloaded ``[notify]``: new URLs get new queues (the old ones finish
        in the background, within the old ``timeout_seconds``); new limits apply from the
        next message."""
        if config.urls != self.config.urls or config.queue_size != self.config.queue_size:
            old_targets, old_timeout = self.targets, self.config.timeout_seconds
            self.config, self.targets = config, self._targets(config)
            self.start()
            threading.Thread(target=_close_all, args=(old_targets, old_timeout), daemon=True).start()
            return
        self.config = config
        for _, outbox in self.targets:
            outbox.rule = _rule(config)

    def send(self, message: Message) -> None:
        """Queue ``message`` for every URL (never blocks)."""
        for target, outbox in self.targets:
            outbox.put(Call(target.label, "apprise", message.event, functools.partial(_send, target, message),
                            rank=rank(message)))

    def drain(self, timeout_seconds: float) -> bool:
        """Wait until every queue is empty, at most ``timeout_seconds`` each."""
        return all(outbox.drain(timeout_seconds) for _, outbox in self.targets)

    def _wanted(self, event: str) -> bool:
        return bool(self.targets) and event in self.config.events

    # -- event subscriber ------------------------------------------------------------

    def on_file_finished(self, event: FileFinished) -> None:
        """``file_failed``."""
        if not event.retrying and event.result.failed and self._wanted("file_failed"):
            self.send(file_failed_message(event.result, self.node))

    def on_processing_paused(self, event: ProcessingPaused) -> None:
        """``processing_paused``."""
        if self._wanted("processing_paused"):
            self.send(paused_message(event.result, self.node))

    def on_watch_root_lost(self, event: WatchRootLost) -> None:
        """``watch_folder_lost``."""
        if self._wanted("watch_folder_lost"):
            self.send(root_lost_message(event, self.node))

    def on_watch_root_restored(self, event: WatchRootRestored) -> None:
        """``watch_folder_restored``."""
        if self._wanted("watch_folder_restored"):
            self.send(root_restored_message(event, self.node))

    def on_batch_closed(self, event: BatchClosed) -> None:
        """``batch_summary``: one message per batch."""
        if self._wanted("batch_summary"):
            self.send(batch_message(event.batch, self.node))


def _send(target: AppriseTarget, message: Message) -> str | None:
    target.send(message)
    return None


def _close_all(targets: list[tuple[AppriseTarget, Outbox]], timeout_seconds: float) -> None:
    for _, outbox in targets:
        outbox.close(timeout_seconds)


def _rule(config: NotifyConfig) -> RetryRule:
    return RetryRule(config.attempts, config.retry_seconds, config.max_retry_seconds, config.max_per_minute)
