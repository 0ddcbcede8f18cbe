"""What the web routes are given: :class:`WebServices`. No HTTP stack here: the daemon
builds it (:meth:`vpod.daemon.lifecycle.Daemon.startup`) whether or not a listener runs."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from vpod.db.store import Store
from vpod.web.stream import Changes


@dataclass(frozen=True)
class WebServices:
    """The daemon as the web page and API see it.

    Attributes:
        snapshot: :func:`vpod.web.snapshot.web_snapshot` of the daemon (reads the database).
        store: the daemon's store (listings, batches, history, retry, resume).
        control: wakes the daemon's main loop to read the control requests in the
            database (what SIGUSR1 does for ``vpod retry`` / ``vpod resume``).
        changes: the EventBus subscriber the event stream waits on.
        stop: the daemon's stop Event (open streams end when it is set).
    """

    snapshot: Callable[[], dict[str, Any]]
    store: Store
    control: Callable[[], None]
    changes: Changes
    stop: threading.Event
