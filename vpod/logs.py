"""Structured logging with structlog: JSON lines for machines, console for people.

Event names and their fields are an interface users grep and alert on; they are
listed in the README ("Log events"). Context bound with
``structlog.contextvars.bound_contextvars`` (``path``, ``worker``, ``batch_id``)
appears on every line logged inside it.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def resolve_format(configured: str, stream: TextIO) -> str:
    """``json`` or ``console`` for ``[logging] format``.

    ``auto`` means JSON under systemd (``INVOCATION_ID`` or ``JOURNAL_STREAM`` set,
    systemd.exec(5)) or when ``stream`` is not a terminal, console otherwise.
    """
    if configured != "auto":
        return configured
    if os.environ.get("INVOCATION_ID") or os.environ.get("JOURNAL_STREAM"):
        return "json"
    return "console" if stream.isatty() else "json"


def configure_logging(level: str, fmt: str, stream: TextIO | None = None) -> None:
    """(Re)configure structlog; safe to call again on reload.

    Args:
        level: ``debug``, ``info``, ``warning`` or ``error``.
        fmt: ``auto``, ``json`` or ``console``.
        stream: where lines go (default: stderr).
    """
    stream = stream or sys.stderr
    renderer: structlog.types.Processor
    if resolve_format(fmt, stream) == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
