"""A short-lived in-process cache of verified API keys.

Looking a key up costs a database round-trip per request; the cache keeps the role of
each key that verified recently, keyed by the key's SHA-256 (the key itself is never
kept), for `ttl` seconds, bounded to `capacity` entries (least recently used evicted).
Unknown keys are never cached, so a flood of wrong keys cannot fill it and a key created
a moment ago works at once.  The price: a key deleted from the database keeps working
in each worker for at most `ttl` seconds (documented in docs/service.md).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from coatcheck.middleware.gateway.apikeys import Role

__all__ = ["KeyCache"]


class KeyCache:
    """Digest -> (role, expiry); thread-safe, bounded, TTL on the injected clock."""

    def __init__(
        self, ttl: float, capacity: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._capacity = capacity
        self._clock = clock
        self._entries: OrderedDict[str, tuple[Role, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KeyCache(size={len(self._entries)}, ttl={self._ttl})"

    def get(self, digest: str) -> Role | None:
        """The cached role for `digest`, or None when absent or expired."""
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if entry[1] <= self._clock():
                del self._entries[digest]
                return None
            self._entries.move_to_end(digest)
            return entry[0]

    def put(self, digest: str, role: Role) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            self._entries[digest] = (role, self._clock() + self._ttl)
            self._entries.move_to_end(digest)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
