"""A file's original language: the sources in order, first answer wins.

0. the payload of the Sonarr or Radarr webhook that queued the file, when it gave one
   (:mod:`vpod.hooks.hints`);
1. the configured Sonarr and Radarr instances (``[arr.NAME]``), in the config's order:
   the series or movie whose folder holds the file, its ``originalLanguage``;
2. the Matroska ``FlagOriginal`` of the file's audio tracks (RFC 9559 §5.1.4.1.9: "the
   track is in the content's original language"): their language, when the flagged
   audio tracks agree on one (``und`` aside);
3. the selected policy's ``original_language``.

An instance that does not answer (down, too slow, a refused key) is skipped when its
``when_unavailable`` is ``fallback``; when it is ``retry``, no instance answered and a
language list of the policy names ``"original"`` (:func:`names_original`), the
:class:`Resolution` says to wait (the pipeline fails the file with the transient
reason ``original_language_unavailable``; the daemon tries it again later). A policy
that uses the original language only to set ``FlagOriginal`` (``mark_original``) never
waits: it gets the *arr's answer when there is one, else the later sources'.

The answer is looked up once per file and pass: the plan and its verification use the
same one (:class:`vpod.pipeline.FileProcessor`), so does ``vpod plan``. No request is
made per file: each instance's list is cached (:mod:`vpod.original.catalog`).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple

from vpod.arr_config import ArrConfig, ArrInstance
from vpod.errors import MediaError
from vpod.media.model import MediaInfo
from vpod.outcomes import Reason
from vpod.policy.languages import UNDETERMINED
from vpod.policy.original import ORIGINAL, OriginalLanguage
from vpod.policy.policy import LANGUAGE_LIST_KEYS, Policy

if TYPE_CHECKING:  # the arr client (http.client, email) is imported only with an instance configured
    from vpod.original.catalog import ArrCatalog, Lookup
    from vpod.original.client import ArrItem

FLAG_ORIGINAL = "flag_original"
POLICY = "policy"


def names_original(policy: Policy) -> bool:
    """True when one of ``policy``'s language lists names ``"original"``: what the file
    ends as depends on the answer, so it may wait for an instance (``when_unavailable =
    "retry"``)."""
    return any(ORIGINAL in getattr(policy, key) for key in LANGUAGE_LIST_KEYS)


def needs_original(policy: Policy) -> bool:
    """True when ``policy`` uses the original language at all: :func:`names_original`,
    or ``mark_original`` (set ``FlagOriginal`` on original-language tracks; this alone
    never waits for an instance). Otherwise no source is asked."""
    return policy.mark_original or names_original(policy)


class Resolution(NamedTuple):
    """The original language of one file, and how it was found.

    Attributes:
        original: the first answer, or ``None`` (no source answered: ``"original"``
            matches nothing). While :attr:`waiting` is set it is what the later sources
            say, shown by ``vpod plan``; the run waits instead of using it.
        waiting: the instances with ``when_unavailable = "retry"`` that did not answer
            when no instance did (each ``kind "name" at URL: why``); non-empty: the file
            must wait (:meth:`error`).
        notes: what people may want to know: instances skipped as unavailable
            (``fallback``), a series or movie without an original language, flagged
            tracks that disagree.
        retried: the file is tried again later when it waits (the daemon; not
            ``vpod process``).
    """

    original: OriginalLanguage | None
    waiting: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    retried: bool = True

    def error(self, path: Path) -> MediaError | None:
        """The transient failure that makes the file wait, or ``None``. Its text says
        the file is tried again later when :attr:`retried` (the daemon), and what to do
        instead when not (``vpod process``)."""
        if not self.waiting:
            return None
        then = (
            'when_unavailable = "retry": tried again later' if self.retried
            else 'when_unavailable = "retry": run vpod process again once it answers, '
            'or set when_unavailable = "fallback" to judge such files without it'
        )
        return MediaError(
            f"{path}: its original language is not known yet: {'; '.join(self.waiting)} ({then})",
            reason=Reason.ORIGINAL_LANGUAGE_UNAVAILABLE,
            permanent=False,
        )

    def describe(self) -> str:
        """One line for people: ``original language: kor (from radarr: Parasite)``, or
        why it is unknown."""
        if self.waiting:
            return "original language unknown: waiting for " + "; ".join(self.waiting)
        if self.original is None:
            return "original language unknown: no source answered"
        return f"original language: {self.original.describe()}"


class OriginalResolver:
    """Finds files' original language; thread-safe, one per process (the daemon's
    workers share it, so they share each instance's cached list).

    Args:
        arr: the configured instances (``[arr]``).
        retried: files that wait are tried again later by the caller (the daemon);
            ``False`` for ``vpod process`` (:meth:`Resolution.error`'s wording).
        clock, fetch: passed to each :class:`ArrCatalog` (tests; ``fetch`` ``None``:
            :func:`vpod.original.client.fetch_items`).
        hinted: ``hinted(path)`` is the original language a Sonarr/Radarr webhook gave
            for the file (:meth:`vpod.hooks.hints.HookHints.original`), asked before
            every other source; ``None``: no webhooks (``vpod process``).
    """

    def __init__(
        self,
        arr: ArrConfig,
        *,
        retried: bool = True,
        clock: Callable[[], float] = time.monotonic,
        fetch: Callable[[ArrInstance], list[ArrItem]] | None = None,
        hinted: Callable[[Path], OriginalLanguage | None] | None = None,
    ) -> None:
        self.hinted = hinted
        self.retried = retried
        self.clock = clock
        self.fetch = fetch
        self._lock = threading.Lock()
        self._catalogs: tuple[ArrCatalog, ...] = tuple(self._catalog(i) for i in arr.instances)

    def _catalog(self, instance: ArrInstance) -> ArrCatalog:
        # Imported here: a run without [arr] instances needs no HTTP client.
        from vpod.original.catalog import ArrCatalog
        from vpod.original.client import fetch_items

        return ArrCatalog(instance, clock=self.clock, fetch=self.fetch or fetch_items)

    def reconfigure(self, arr: ArrConfig) -> None:
        """Put a reloaded ``[arr]`` in force from the next file on; an instance whose
        settings did not change keeps its cached list."""
        with self._lock:
            kept = {c.instance: c for c in self._catalogs}
            self._catalogs = tuple(kept.get(i) or self._catalog(i) for i in arr.instances)

    def lookup(self, instance: ArrInstance, path: Path) -> Lookup | None:
        """What ``instance`` (one of the configured ones) says about ``path``: the series
        or movie holding it, from the same cached list the original language uses
        (:class:`~vpod.original.catalog.ArrCatalog`, fetched as its refresh rule says);
        ``None`` when ``instance`` is no longer configured (a reload). Never raises for
        the instance's failures (:attr:`Lookup.unavailable`)."""
        with self._lock:
            catalog = next((c for c in self._catalogs if c.instance == instance), None)
        return None if catalog is None else _lookup(catalog, path)

    def resolve(self, media: MediaInfo, policy: Policy) -> Resolution:
        """The original language of ``media`` (its path and tracks) under ``policy``;
        ``Resolution(None)`` without asking anything when the policy does not use it
        (:func:`needs_original`). Only a policy that :func:`names_original` waits for
        an instance. Never raises for an instance's failure."""
        if not needs_original(policy):
            return Resolution(None)
        given = self.hinted(media.path) if self.hinted is not None else None
        if given is not None:  # the webhook that queued the file said it: no request needed
            return Resolution(given)
        may_wait = names_original(policy)
        with self._lock:
            catalogs = self._catalogs
        waiting: list[str] = []
        notes: list[str] = []
        for catalog in catalogs:
            lookup = _lookup(catalog, media.path)
            instance = catalog.instance
            if lookup.unavailable is not None:
                (waiting if may_wait and instance.when_unavailable == "retry" else notes).append(lookup.unavailable)
                continue
            title = lookup.title
            if title is None:
                continue
            if title.code is not None:
                detail = title.title if instance.name == instance.kind else f"{title.title} ({instance.name})"
                return Resolution(OriginalLanguage(title.code, instance.kind, detail), notes=tuple(notes))
            notes.append(
                f"{instance.describe()}: {title.title!r} has no original language vpod knows "
                f"({title.language or 'none given'})"
            )
            break  # its folder holds the file: no other instance does
        flagged, disagreement = _from_flags(media)
        if disagreement:
            notes.append(disagreement)
        return Resolution(flagged or _from_policy(policy), tuple(waiting), tuple(notes), self.retried)


def _lookup(catalog: ArrCatalog, path: Path) -> Lookup:
    """What ``catalog``'s instance says about ``path``; asked again by the path with
    symlinks resolved when it holds the path as written nowhere."""
    lookup = catalog.lookup(path)
    if lookup.title is None and lookup.unavailable is None:
        real = Path(os.path.realpath(path))
        if real != path:
            return catalog.lookup(real)
    return lookup


def _from_flags(media: MediaInfo) -> tuple[OriginalLanguage | None, str | None]:
    """The language of the audio tracks flagged ``FlagOriginal`` when they agree on one
    (``und`` aside), and a note when they disagree (which tracks, which languages)."""
    flagged = [t for t in media.tracks_of("audio") if t.original]
    languages = sorted({t.language for t in flagged if t.language != UNDETERMINED})
    if len(languages) > 1:
        which = ", ".join(f"{t.index} {t.language}" for t in flagged if t.language != UNDETERMINED)
        return None, f"FlagOriginal: the flagged audio tracks disagree ({which}): no answer"
    if not languages:
        return None, None
    tracks = ", ".join(str(t.index) for t in flagged if t.language == languages[0])
    detail = f"audio track {tracks}" if "," not in tracks else f"audio tracks {tracks}"
    return OriginalLanguage(languages[0], FLAG_ORIGINAL, detail), None


def _from_policy(policy: Policy) -> OriginalLanguage | None:
    """The selected policy's ``original_language``, or ``None`` when it sets none."""
    return OriginalLanguage(policy.original_language, POLICY, "original_language") if policy.original_language else None
