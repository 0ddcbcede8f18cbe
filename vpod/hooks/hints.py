"""What a webhook said about a file, kept for the file's job.

A ``Download`` webhook names the *arr instance, the series or movie (its id and title)
and, from Sonarr v4 and Radarr v5 on, its original language. :class:`HookHints` keeps
that per file, by the path the file is queued under, for:

- the original language (:class:`vpod.original.resolver.OriginalResolver` asks
  :meth:`HookHints.original` before any other source);
- whoever acts after the file is rewritten (an *arr rescan after a rename):
  :meth:`HookHints.get` with the job's path (``FileProcessingResult.path``).

In memory only, on the node that received the call: bounded (:data:`MAX_HINTS`, the
oldest dropped first) and forgotten :data:`HINT_SECONDS` after the call. A file another
node processes (a shared database), or one processed after a restart, is judged by the
other sources, as without a webhook.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vpod.policy.original import OriginalLanguage

MAX_HINTS = 10_000
"""Files remembered at most (a season pack is a few dozen; each hint is a few hundred bytes)."""

HINT_SECONDS = 24 * 3600.0
"""How long a hint is kept after its webhook (seconds): longer than any queue wait."""


@dataclass(frozen=True)
class HookHint:
    """One webhook's facts about one file.

    Attributes:
        kind: ``sonarr`` or ``radarr``.
        instance: the ``[arr.NAME]`` the call came from (``?instance=NAME``, the only
            instance of that kind, or the one named like the payload's
            ``instanceName``), or ``None`` when none is configured or none matched.
        instance_name: the payload's ``instanceName`` (``""`` before Sonarr/Radarr v4).
        application_url: the payload's ``applicationUrl``, or ``""``.
        item_id: the series' id (Sonarr) or the movie's id (Radarr) in that instance,
            what ``RescanSeries`` (``seriesId``) and ``RescanMovie`` (``movieId``) take.
        title: the series' or movie's title.
        file_id: the episode or movie file's id in the *arr, or ``None``.
        original: the original language the payload gave (ISO 639-2/B), or ``None``.
        language: the payload's language name as sent (``"Japanese"``), or ``None``.
        is_upgrade: the import replaced an older file.
        received_at: when the call came (monotonic seconds).
    """

    kind: str
    instance: str | None
    instance_name: str
    application_url: str
    item_id: int | None
    title: str
    file_id: int | None
    original: str | None
    language: str | None
    is_upgrade: bool
    received_at: float


class HookHints:
    """Thread-safe map: a file's path (as queued: absolute, in a library) → its latest
    :class:`HookHint`.

    Args:
        clock: monotonic seconds (tests).
        max_hints, hint_seconds: the bounds (:data:`MAX_HINTS`, :data:`HINT_SECONDS`).
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_hints: int = MAX_HINTS,
        hint_seconds: float = HINT_SECONDS,
    ) -> None:
        self.clock = clock
        self.max_hints = max_hints
        self.hint_seconds = hint_seconds
        self._lock = threading.Lock()
        self._hints: OrderedDict[Path, HookHint] = OrderedDict()

    def note(self, path: Path, hint: HookHint) -> None:
        """Remember ``hint`` for ``path`` (replacing an older one)."""
        with self._lock:
            self._hints.pop(path, None)
            self._hints[path] = hint
            self._expire()

    def get(self, path: Path) -> HookHint | None:
        """The hint for ``path``, or ``None`` (no webhook named it, or it expired)."""
        with self._lock:
            self._expire()
            return self._hints.get(path)

    def original(self, path: Path) -> OriginalLanguage | None:
        """The original language a webhook gave for ``path``: source ``sonarr_webhook``
        or ``radarr_webhook``, detail the title (and the instance's name when it is not
        the kind's); ``None`` when no webhook gave one."""
        hint = self.get(path)
        if hint is None or hint.original is None:
            return None
        instance = hint.instance or hint.instance_name
        detail = hint.title if not instance or instance.casefold() == hint.kind else f"{hint.title} ({instance})"
        return OriginalLanguage(hint.original, f"{hint.kind}_webhook", detail)

    def __len__(self) -> int:
        with self._lock:
            return len(self._hints)

    def _expire(self) -> None:
        cutoff = self.clock() - self.hint_seconds
        hints = self._hints
        while hints and (len(hints) > self.max_hints or next(iter(hints.values())).received_at < cutoff):
            hints.popitem(last=False)
