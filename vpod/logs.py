"""Structured logging with structlog: JSON lines for machines, console lines for people.

Event names and their fields are an interface users grep and alert on; they are
listed in the README ("Log events"). Context bound with
``structlog.contextvars.bound_contextvars`` (``path``, ``worker``, ``batch_id``)
appears on every line logged inside it.

The console format (:class:`ConsoleLines`) leads with what happened and to which file::

    file_failed  /srv/inbox/a.mkv  reason=tool_failed  worker=worker-1 batch_id=…  [error 2026-12-05 10:12:05.123Z]
      error: /srv/inbox/a.mkv: mkvmerge exited with status 2:
        Error: The file could not be opened for reading.

A value that spans lines (a tool's message, a traceback) follows the line, one
indented line per line of text; the JSON format keeps every event on one line (JSON
escapes the newlines).

Libraries that log through the standard library's ``logging`` (the PostgreSQL driver
psycopg and its pool, logger ``psycopg`` and ``psycopg.pool``) are routed through the
same processors and renderer (structlog's ``ProcessorFormatter``, structlog docs
"Standard Library Logging"), as the event ``database_driver`` with ``logger`` and
``message`` (any password removed): stderr stays one format, JSON lines under systemd.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from datetime import datetime, timezone
from typing import Any, MutableMapping, Protocol

import structlog

from vpod.results import one_line

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_CONTEXT_LAST = ("worker", "batch_id")  # bound on every line about a file: they go last
_ISO = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d{3})?\d*(.*)$")
_BARE = re.compile(r"^[^\s\"'=\[\]]+$")  # a string shown without quotes
_COLORS = {"error": "\033[31m", "critical": "\033[31m", "warning": "\033[33m"}
DRIVER_LOGGERS = ("psycopg",)
"""Standard-library loggers routed through structlog (``psycopg.pool`` propagates to
``psycopg``); warnings and worse only, whatever ``[logging] level`` says (their info
lines narrate every pooled connection)."""
_BOLD, _DIM, _RESET = "\033[1m", "\033[2m", "\033[0m"


class TextSink(Protocol):
    """Where log lines go: a text stream (``sys.stderr``) or anything with its
    ``write``, ``flush`` and ``isatty`` (:class:`vpod.progress.StatusLine`)."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...

    def isatty(self) -> bool: ...


def resolve_format(configured: str, stream: TextSink) -> str:
    """``json`` or ``console`` for ``[logging] format``.

    ``auto`` means JSON under systemd (``INVOCATION_ID`` or ``JOURNAL_STREAM`` set,
    systemd.exec(5)) or when ``stream`` is not a terminal, console otherwise.
    """
    if configured != "auto":
        return configured
    if os.environ.get("INVOCATION_ID") or os.environ.get("JOURNAL_STREAM"):
        return "json"
    return "console" if stream.isatty() else "json"


class Timestamper:
    """structlog processor adding ``timestamp``: ISO 8601 with microseconds, in UTC
    (``2026-12-05T10:12:05.123456Z``) or in the machine's local time with its UTC offset
    (``2026-12-05T11:12:05.123456+01:00``), so either form names one instant."""

    def __init__(self, local: bool) -> None:
        self.local = local

    def __call__(self, _logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if self.local:
            event_dict["timestamp"] = datetime.now().astimezone().isoformat(timespec="microseconds")
        else:
            now = datetime.now(timezone.utc).replace(tzinfo=None)
            event_dict["timestamp"] = now.isoformat(timespec="microseconds") + "Z"
        return event_dict


class ConsoleLines:
    """structlog renderer for people: ``EVENT  PATH  key=value …  worker=… batch_id=…  [LEVEL TIME]``.

    The event name, then the file (``path``), then the other fields in the order the
    code gave them, then ``worker`` and ``batch_id`` (bound on every line about a
    file); the level and the time close
    the line (milliseconds). Control characters in a one-line value (a newline in a
    file name) are shown as escapes, so one event never breaks into lines by accident.
    A string value that holds line breaks (a tool's message, ``exception``) is written
    after the line, as ``  key: first line`` and its further lines indented by 4 spaces.

    Args:
        colors: ANSI colors (a terminal): the event in bold, yellow for warnings, red
            for errors, the time dimmed.
    """

    def __init__(self, colors: bool = False) -> None:
        self.colors = colors

    def __call__(self, _logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> str:
        fields = dict(event_dict)
        event = one_line(str(fields.pop("event", "")))
        level = str(fields.pop("level", ""))
        timestamp = _short_time(fields.pop("timestamp", None))
        path = fields.pop("path", None)
        context = {key: fields.pop(key) for key in _CONTEXT_LAST if key in fields}
        blocks: list[str] = []
        head = self._paint(event, level)
        parts = [f"{head:<{20 + len(head) - len(event)}}"]
        if path is not None:
            parts.append(one_line(str(path)))
        for group in (fields, context):
            inline = [f"{key}={_value(value)}" for key, value in group.items() if not _block(key, value, blocks)]
            if inline:
                parts.append(" ".join(inline))
        stamp = f"[{level} {timestamp}]" if timestamp else f"[{level}]"
        parts.append(f"{_DIM}{stamp}{_RESET}" if self.colors else stamp)
        return "\n".join(["  ".join(parts), *blocks])

    def _paint(self, event: str, level: str) -> str:
        if not self.colors:
            return event
        return f"{_COLORS.get(level, '')}{_BOLD}{event}{_RESET}"


def _block(key: str, value: Any, blocks: list[str]) -> bool:
    """Append ``value`` to ``blocks`` as indented lines when it spans lines; True if it did."""
    if not (isinstance(value, str) and ("\n" in value or "\r" in value)):
        return False
    lines = [one_line(line) for line in value.strip("\r\n").splitlines()] or [""]
    blocks.append(f"  {key}: {lines[0]}")
    blocks += [f"    {line}" for line in lines[1:]]
    return True


def _value(value: Any) -> str:
    if isinstance(value, str):
        text = one_line(value)
        return text if _BARE.match(text) else '"' + text.replace('"', '\\"') + '"'
    if value is None or isinstance(value, (bool, int, float)):
        return str(value)
    return one_line(repr(value))


def _short_time(timestamp: Any) -> str:
    """``2026-12-05T10:12:05.123456Z`` → ``2026-12-05 10:12:05.123Z`` (offsets kept)."""
    if not isinstance(timestamp, str):
        return ""
    match = _ISO.match(timestamp)
    if not match:
        return timestamp
    day, clock, millis, zone = match.groups()
    return f"{day} {clock}{millis or ''}{zone}"


class DriverEvent:
    """structlog processor (``foreign_pre_chain``) turning a standard-library record into
    vpod's shape: event ``database_driver``, ``logger`` (its name), ``message`` (its text
    on one line, any connection password replaced by ``***``:
    :func:`vpod.db.secrets.hide_password`)."""

    def __call__(self, _logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        from vpod.db.secrets import hide_password  # moved here: only a driver's record needs it

        record = event_dict.get("_record")
        message = hide_password(str(event_dict.get("event", "")))
        event_dict["event"] = "database_driver"
        event_dict["logger"] = record.name if record is not None else ""
        event_dict["message"] = " ".join(message.split())
        return event_dict


class _DriverHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure_logging` puts on :data:`DRIVER_LOGGERS` (its own
    class, so a reconfiguration replaces it instead of adding another)."""


def _route_driver_logs(stream: TextSink, renderer: structlog.types.Processor, timestamps: str, level: str) -> None:
    """Send the :data:`DRIVER_LOGGERS` records to ``stream`` through ``renderer``, with
    the level and timestamp vpod's own lines have; never to Python's last-resort
    handler (raw text on stderr)."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.processors.add_log_level,
            Timestamper(local=timestamps == "local"),
            structlog.processors.format_exc_info,
            DriverEvent(),
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = _DriverHandler(stream)
    handler.setFormatter(formatter)
    for name in DRIVER_LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if isinstance(h, _DriverHandler)]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(max(logging.WARNING, _LEVELS[level]))


def configure_logging(level: str, fmt: str, stream: TextSink | None = None, *, timestamps: str = "utc") -> None:
    """(Re)configure structlog; safe to call again on reload.

    Args:
        level: ``debug``, ``info``, ``warning`` or ``error``.
        fmt: ``auto``, ``json`` or ``console``.
        stream: where lines go (default: stderr).
        timestamps: ``utc`` or ``local`` (``[logging] timestamps``): see :class:`Timestamper`.

    The standard-library loggers of :data:`DRIVER_LOGGERS` go to the same stream in the
    same format (:class:`DriverEvent`).
    """
    stream = stream or sys.stderr
    renderer: structlog.types.Processor
    if resolve_format(fmt, stream) == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    else:
        renderer = ConsoleLines(colors=stream.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            Timestamper(local=timestamps == "local"),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        # structlog annotates file as TextIO, but its WriteLogger only calls write and flush.
        logger_factory=structlog.WriteLoggerFactory(file=stream),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    _route_driver_logs(stream, renderer, timestamps, level)
