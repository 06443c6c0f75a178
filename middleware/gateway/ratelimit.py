"""Messages per rate key per fixed window, counted in the database (holds across workers)."""

from __future__ import annotations

from dataclasses import dataclass

from coatcheck.middleware.gateway.errors import RateLimited

__all__ = ["RateLimit"]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `limit` messages per `window` seconds (fixed windows)."""

    limit: int
    window: int

    def window_start(self, now: float) -> int:
        return int(now // self.window) * self.window

    def refused(self, now: float) -> RateLimited:
        """The 429 for a key over the limit, with the seconds until the window turns."""
        start = self.window_start(now)
        return RateLimited(retry_after=max(1, int(start + self.window - now)), name="sender")

    def precheck(self, count: int, now: float) -> None:
        """Refuse when `count` messages already fill the window (before anything is vaulted)."""
        if count >= self.limit:
            raise self.refused(now)
