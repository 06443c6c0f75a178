"""A short-lived in-process cache of verified API keys.

Looking a key up costs a database round-trip per request; the cache keeps the role of
each key that verified recently, keyed by the key's SHA-256 (the key itself is never
kept), for `ttl` seconds, bounded to `capacity` entries (least recently used evicted).
Unknown keys are never cached, so a flood of wrong keys cannot fill it and a key created
a moment ago works at once.  Revocation: each entry remembers its key's public prefix, and
the worker's revocation watch (`Authenticator.watch_revocations`, every
`REVOCATION_POLL_SECONDS`) evicts the entries whose prefix is no longer in the database, so
a revoked key stops working within about a second instead of the cache's `ttl`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection

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
        self._entries: OrderedDict[str, tuple[Role, float, str]] = OrderedDict()
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

    def put(self, digest: str, role: Role, prefix: str) -> None:
        """Remember `role` for `digest` (the key whose public prefix is `prefix`)."""
        if self._ttl <= 0:
            return
        with self._lock:
            self._entries[digest] = (role, self._clock() + self._ttl, prefix)
            self._entries.move_to_end(digest)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def keep_only(self, prefixes: Collection[str]) -> int:
        """Evict every entry whose key prefix is not in `prefixes` (the keys that still
        exist); how many were evicted."""
        with self._lock:
            gone = [d for d, entry in self._entries.items() if entry[2] not in prefixes]
            for digest in gone:
                del self._entries[digest]
        return len(gone)

    def clear(self) -> None:
        """Forget every entry (the revocation watch could not read the keys)."""
        with self._lock:
            self._entries.clear()
