"""One webhook call's answer: queue the imported file, acknowledge, or refuse.

The HTTP layer (:mod:`vpod.http.app`) has checked the client's rate, the credentials,
the content type and the body's size; :meth:`HookReceiver.receive` gets the body.

- ``Download``: the file (:func:`vpod.hooks.paths.library_file`) goes to the
  stabilizer at once (:meth:`vpod.watch.stabilizer.Stabilizer.notify_done`): it is
  queued as soon as two looks agree and no process has it open for writing, then judged
  under its library's policy like any file. What the payload said (instance, id, original
  language) is noted first (:class:`vpod.hooks.hints.HookHints`). 202 ``"accepted"``:
  handed to the open-writer check, whose outcome (queued, unchanged, same content...)
  the answer cannot know yet (:data:`NEXT`).
- ``Test``: 200. Any other event type the application sends: 200, ignored.
- Malformed JSON, not a payload, an unknown event type: 400; a path refused: 422; an
  unknown ``?instance=``: 400. Nothing is queued; each refusal is one ``hook_refused``
  line.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import structlog

from vpod.arr_config import ArrInstance
from vpod.config import VPOConfig
from vpod.hooks.hints import HookHint, HookHints
from vpod.hooks.paths import PathRefused, library_file
from vpod.hooks.payload import DOWNLOAD, TEST, HookEvent, PayloadError, parse_payload
from vpod.original.names import language_code
from vpod.watch.filters import PathFilter


NEXT = "the open-writer check, then the intake decides (queued, unchanged, same content, ...): see the log"
"""What a ``Download``'s 202 says happens next: the file was handed on, not queued yet
(the stabilizer waits until no process writes it; the intake may find it unchanged)."""


@dataclass(frozen=True)
class HookAnswer:
    """``status`` (HTTP) and the JSON ``body`` of the answer."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)


class HookReceiver:
    """Answers webhook calls; thread-safe (the HTTP server's threads call it).

    Args:
        config: the configuration (``[hooks]``, ``[arr]``, ``[watch]``); a reload
            passes the new one to :meth:`reconfigure`.
        roots: the watched folders now.
        queue: hands files to the stabilizer as complete (``Stabilizer.notify_done``).
        hints: where what a payload says about a file is kept.
        clock: monotonic seconds, the hints' time.
    """

    def __init__(
        self,
        config: VPOConfig,
        *,
        roots: Callable[[], tuple[Path, ...]],
        queue: Callable[[list[Path]], None],
        hints: HookHints,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.roots = roots
        self.queue = queue
        self.hints = hints
        self.clock = clock
        self.log = structlog.get_logger("vpod")
        self.reconfigure(config)

    def reconfigure(self, config: VPOConfig) -> None:
        """Put a reloaded ``[hooks]``, ``[arr]`` and ``[watch]`` in force from the next call."""
        self.config = config
        self.path_filter = PathFilter.from_config(config.watch)

    def receive(self, kind: str, body: bytes, *, instance: str | None = None, client: str = "") -> HookAnswer:
        """Answer one call of the ``kind`` (``sonarr``/``radarr``) webhook with JSON
        ``body``; ``instance``: the ``?instance=NAME`` of the URL, if any. Never raises
        for what the request holds."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            return self._refused(kind, 400, "malformed_json", f"the body is not JSON: {str(exc)[:120]}", client)
        try:
            event = parse_payload(kind, data)
        except PayloadError as exc:
            return self._refused(kind, 400, "not_a_payload", str(exc), client)
        try:
            arr = self._instance(kind, instance, event.instance_name)
        except LookupError as exc:
            return self._refused(kind, 400, "unknown_instance", str(exc), client)
        if event.event_type == TEST:
            self.log.info("hook_test", kind=kind, instance=arr.name if arr else None,
                          instance_name=event.instance_name or None, client=client)
            return HookAnswer(200, {"ok": True, "event": TEST})
        if event.event_type != DOWNLOAD:
            self.log.info("hook_ignored", kind=kind, event_type=event.event_type, client=client)
            return HookAnswer(200, {"ok": True, "event": event.event_type, "ignored": True})
        assert event.file_paths  # parse_payload: a Download names its files
        hint = self._hint(event, arr)
        accepted: list[str] = []
        refused: list[dict[str, str]] = []
        for remote in event.file_paths:
            try:
                path, _root = library_file(
                    remote, path_map=self.config.hooks.path_map,
                    instance_mappings=arr.path_mappings if arr else (), roots=self.roots(), path_filter=self.path_filter,
                )
            except PathRefused as exc:
                if len(event.file_paths) == 1:
                    return self._refused(kind, 422, exc.reason, str(exc), client, remote_path=remote)
                self.log.warning("hook_refused", kind=kind, status=422, reason=exc.reason, error=str(exc),
                                 client=client, remote_path=remote)
                refused.append({"path": remote, "reason": exc.reason, "error": str(exc)})
                continue
            self.hints.note(path, hint)
            self.queue([path])
            accepted.append(str(path))
            self.log.info(
                "hook_download", kind=kind, path=str(path), remote_path=remote, upgrade=event.is_upgrade,
                instance=hint.instance, item_id=hint.item_id, title=hint.title or None, original_language=hint.original,
                client=client,
            )
        if len(event.file_paths) == 1:
            return HookAnswer(202, {"ok": True, "event": DOWNLOAD, "accepted": accepted[0], "next": NEXT})
        # Sonarr's "On Import Complete": the files of a season pack, each judged alone.
        status = 202 if accepted else 422
        return HookAnswer(status, {"ok": bool(accepted), "event": DOWNLOAD, "accepted": accepted, "refused": refused,
                                   "next": NEXT})

    def _instance(self, kind: str, named: str | None, instance_name: str) -> ArrInstance | None:
        """The ``[arr.NAME]`` of ``kind`` the call comes from: ``named`` (the URL's
        ``?instance=``), else the only one of that kind, else the one whose name is the
        payload's ``instanceName`` (case aside); ``None`` when none fits.

        Raises:
            LookupError: ``named`` is no ``[arr.NAME]`` of that kind.
        """
        of_kind = [i for i in self.config.arr.instances if i.kind == kind]
        if named is not None:
            found = next((i for i in of_kind if i.name == named), None)
            if found is None:
                raise LookupError(f"?instance={named[:60]!r}: no [arr.NAME] of kind {kind} has that name")
            return found
        if len(of_kind) == 1:
            return of_kind[0]
        wanted = instance_name.casefold()
        return next((i for i in of_kind if wanted and i.name.casefold() == wanted), None)

    def _hint(self, event: HookEvent, arr: ArrInstance | None) -> HookHint:
        return HookHint(
            kind=event.kind, instance=arr.name if arr else None, instance_name=event.instance_name,
            application_url=event.application_url, item_id=event.item_id, title=event.title, file_id=event.file_id,
            original=language_code(event.language), language=event.language, is_upgrade=event.is_upgrade,
            received_at=self.clock(),
        )

    def _refused(self, kind: str, status: int, reason: str, error: str, client: str, **fields: Any) -> HookAnswer:
        self.log.warning("hook_refused", kind=kind, status=status, reason=reason, error=error, client=client, **fields)
        return HookAnswer(status, {"ok": False, "reason": reason, "error": error})
