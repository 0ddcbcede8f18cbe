"""Each client's request rate: a token bucket per client address.

A client may send ``burst`` requests at once, then ``per_second`` on average; beyond
that it is answered 429 with ``Retry-After``. A flood is logged as one line when it
starts (``http_rate_limited``) and one at the client's first request after
:data:`QUIET_SECONDS` without a refusal (``http_rate_limit_ended``, with how many
requests were refused), not a line per refused request: a flood of log lines is a
flood too.

Memory is bounded: at most :data:`MAX_CLIENTS` addresses are tracked; when the table is
full, clients whose bucket is full again are forgotten, and if none is, new addresses
share one bucket (so spoofed or many addresses cannot grow the table).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable

MAX_CLIENTS = 4096
"""Client addresses tracked at most."""

QUIET_SECONDS = 1.0
"""A flood ends once a client was refused nothing for this long (seconds)."""

_SHARED = "(others)"


@dataclass
class _Bucket:
    tokens: float
    at: float
    refused: int = 0  # since the episode of refusals began
    refused_at: float = 0.0  # the last refusal


@dataclass(frozen=True)
class Admission:
    """One request's verdict.

    Attributes:
        allowed: it may go on.
        retry_after: seconds until a request would be allowed (refused only).
        started: this refusal begins an episode (log it).
        ended: the client was let in after ``ended`` refusals, the last one
            :data:`QUIET_SECONDS` ago or more (log it); 0 otherwise.
    """

    allowed: bool
    retry_after: float = 0.0
    started: bool = False
    ended: int = 0


class RateLimiter:
    """Token buckets by client address; thread-safe.

    Args:
        per_second: tokens added per second (the sustained rate).
        burst: the bucket's size (requests at once).
        clock: monotonic seconds.
        max_clients: addresses tracked at most (:data:`MAX_CLIENTS`).
    """

    def __init__(
        self, per_second: float, burst: int, clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.per_second = per_second
        self.burst = burst
        self.clock = clock
        self.max_clients = max_clients
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    def admit(self, client: str) -> Admission:
        """Take one token for ``client``; see :class:`Admission`."""
        now = self.clock()
        with self._lock:
            bucket = self._bucket(client, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.per_second)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                ended = 0
                if bucket.refused and now - bucket.refused_at >= QUIET_SECONDS:
                    ended, bucket.refused = bucket.refused, 0
                return Admission(True, ended=ended)
            bucket.refused += 1
            bucket.refused_at = now
            wait = (1.0 - bucket.tokens) / self.per_second
            return Admission(False, retry_after=max(1.0, math.ceil(wait)), started=bucket.refused == 1)

    def _bucket(self, client: str, now: float) -> _Bucket:
        bucket = self._buckets.get(client)
        if bucket is not None:
            return bucket
        if len(self._buckets) >= self.max_clients:
            full = self.burst / self.per_second  # seconds after which any bucket is full again
            for key in [k for k, b in self._buckets.items() if now - b.at >= full and not b.refused]:
                del self._buckets[key]
        if len(self._buckets) >= self.max_clients:
            client = _SHARED
            shared = self._buckets.get(client)
            if shared is not None:
                return shared
        bucket = self._buckets[client] = _Bucket(float(self.burst), now)
        return bucket
