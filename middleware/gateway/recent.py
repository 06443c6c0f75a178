"""Recently vaulted values, as keyed blind forms, so the log filter can catch them too.

The detector's global patterns miss context-only values (a PIN, a password captured
whole).  The gateway records an HMAC of each value it just vaulted (the key is random per
process and never leaves it), in a bounded LRU; the log filter blinds each word of a log
line the same way and redacts those that match.  Only digests are kept in memory.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading
from collections import OrderedDict

__all__ = ["RecentValues"]

# Words split at URL separators too, so a remembered id is caught as a path segment or a
# query value of an access line (`/v1/conversations/<id>/end`).
_WORD = re.compile(r"[^\s\"'`,;:()\[\]{}<>/?&=]+")


class RecentValues:
    """A bounded, thread-safe set of blind forms of recently vaulted values."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._key = os.urandom(32)
        self._capacity = capacity
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RecentValues(size={len(self._seen)})"

    def _blind(self, value: str) -> bytes:
        return hmac.new(self._key, value.encode("utf-8", "replace"), hashlib.sha256).digest()

    def add(self, value: str, *, words: bool = True) -> None:
        """Remember `value` (its words too, so a multi-word capture is caught piecewise;
        `words=False` for an identifier such as a sender id, whose pieces are no secret)."""
        with self._lock:
            for item in {value, *(_WORD.findall(value) if words else ())}:
                blind = self._blind(item)
                self._seen[blind] = None
                self._seen.move_to_end(blind)
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)

    def redact(self, text: str) -> str:
        """`text` with every word that is a remembered value replaced by `[REDACTED]`."""
        if not self._seen:
            return text

        def swap(match: re.Match[str]) -> str:
            word = match.group(0)
            if self._blind(word) in self._seen:
                return "[REDACTED]"
            core = word.rstrip(".!?")  # sentence punctuation after a value
            if core != word and self._blind(core) in self._seen:
                return "[REDACTED]" + word[len(core) :]
            return word

        return _WORD.sub(swap, text)
