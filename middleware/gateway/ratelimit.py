"""Fixed-window counters, counted in the database (they hold across workers), and the
per-conversation cap on vaulted values.

One counter table serves every limit (`gw_rate_counters`): a sender's messages (its
conversation id), an API key's messages or `/v1/redact` calls, a conversation's redact
calls.  Keys other than a sender's start with a control character (`\x1f`), which no
sender id can hold (`text.clean_field` refuses them), so no sender can name itself into
another limit's counter; conversation ids are digested there (the column's length).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from coatcheck.middleware.gateway.errors import RateLimited

__all__ = ["RateLimit", "ValueCap", "key_counter", "redact_counter"]

_MARK = "\x1f"


def key_counter(kind: str, prefix: str | None) -> str:
    """The counter of an API key (`kind`: `messages`, `redact`) by its public prefix."""
    return f"{_MARK}{kind}:key:{prefix or 'unknown'}"


def redact_counter(conversation_id: str) -> str:
    """The counter of `/v1/redact` calls into one conversation (digested id)."""
    digest = hashlib.sha256(conversation_id.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{_MARK}redact:conv:{digest}"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `limit` uses per `window` seconds (fixed windows); `name` is what the 429
    names (`sender`, `api_key`, `conversation`)."""

    limit: int
    window: int
    name: str = "sender"

    def window_start(self, now: float) -> int:
        return int(now // self.window) * self.window

    def refused(self, now: float) -> RateLimited:
        """The 429 for a key over the limit, with the seconds until the window turns."""
        start = self.window_start(now)
        return RateLimited(retry_after=max(1, int(start + self.window - now)), name=self.name)

    def precheck(self, count: int, now: float) -> None:
        """Refuse when `count` uses already fill the window (before anything is vaulted)."""
        if count >= self.limit:
            raise self.refused(now)


@dataclass(frozen=True, slots=True)
class ValueCap:
    """At most `limit` values in one conversation's live key epoch (`tenant`'s vault)."""

    limit: int
    tenant: str
