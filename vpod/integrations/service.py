"""The daemon's integrations part: the rescan and refresh calls after renames and the
notifications, each on its own thread(s), built from the config and reloaded live."""

from __future__ import annotations

from typing import Protocol

from vpod.config import VPOConfig
from vpod.events import EventBus
from vpod.integrations.notifications import Notifier
from vpod.integrations.outbox import Call, Outbox
from vpod.integrations.renames import CALL_HOLD_SECONDS, CALL_QUEUE, CALL_RULE, RenameCalls
from vpod.original.resolver import OriginalResolver

class Counting(Protocol):
    """What the integrations count (:class:`vpod.metrics.Metrics`)."""

    def integration_dropped(self, kind: str, reason: str) -> None:
        """A call of ``kind`` was dropped for ``reason``."""

    def integration_ended(self, kind: str, outcome: str) -> None:
        """A call of ``kind`` ended as ``outcome`` (notified, failed, skipped)."""


class Integrations:
    """Subscribes to the daemon's events; tells the *arr instances, media servers and
    notification URLs, never on the publisher's thread.

    Args:
        config: the config in force.
        resolver: the daemon's original-language resolver (its cached *arr lists find
            the series or movie of a renamed file).
        node: this node's name, in notifications.
        metrics: counts drops and outcomes.
    """

    def __init__(self, config: VPOConfig, *, resolver: OriginalResolver, node: str, metrics: Counting) -> None:
        self.metrics = metrics
        self.calls = Outbox("integrations", capacity=CALL_QUEUE, rule=CALL_RULE, on_drop=self._dropped,
                            on_outcome=self._ended, hold_seconds=CALL_HOLD_SECONDS)
        self.renames = RenameCalls(self.calls, config, resolver)
        self.notifier = Notifier(config.notify, node=node, on_drop=self._dropped, on_outcome=self._ended)

    def _dropped(self, call: Call, reason: str) -> None:
        self.metrics.integration_dropped(call.kind, reason)

    def _ended(self, call: Call, outcome: str) -> None:
        self.metrics.integration_ended(call.kind, outcome)

    def subscribe(self, events: EventBus) -> None:
        """Receive file, batch, pause and watch-folder events."""
        events.subscribe(self.renames)
        events.subscribe(self.notifier)

    def start(self) -> None:
        """Start the threads: one for rescans and refreshes, one per notification URL."""
        self.calls.start()
        self.notifier.start()

    def reconfigure(self, config: VPOConfig) -> None:
        """Apply a reloaded ``[arr]``, ``[media_servers]`` and ``[notify]``."""
        self.renames.reconfigure(config)
        self.notifier.reconfigure(config.notify)

    def close(self) -> None:
        """At shutdown, after the last batch closed: send what is queued (notifications
        for at most ``[notify] timeout_seconds``, calls for
        :data:`~vpod.integrations.renames.CLOSE_SECONDS`), drop
        the rest (counted)."""
        self.notifier.close()
        self.renames.close()
