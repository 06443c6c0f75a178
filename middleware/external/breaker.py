"""A per-endpoint circuit breaker, so a dead customer vault costs one timeout, not many.

closed --(N consecutive failures)--> open --(cool-down elapsed)--> half-open
half-open lets one trial call through: success closes, failure re-opens (new cool-down).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from coatcheck.middleware.external.errors import CircuitOpen

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(Enum):
    """Where the breaker is; `state` computes half-open from the clock."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts consecutive failures; time comes from the injected `clock` (seconds)."""

    def __init__(
        self, name: str, threshold: int, cooldown: float, clock: Callable[[], float]
    ) -> None:
        self.name = name
        self._threshold = threshold
        self._cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self.state.value})"

    @property
    def state(self) -> BreakerState:
        """The current state at the clock's now."""
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self._cooldown:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def before_call(self) -> None:
        """Raise `CircuitOpen` unless a call may go out now (closed, or the half-open trial)."""
        state = self.state
        if state is BreakerState.OPEN:
            raise CircuitOpen(self.name)
        if state is BreakerState.HALF_OPEN:
            if self._trial_running:
                raise CircuitOpen(self.name)
            self._trial_running = True

    def record_success(self) -> None:
        """Close the breaker and forget past failures."""
        self._failures = 0
        self._opened_at = None
        self._trial_running = False

    def record_failure(self) -> None:
        """Count a failure; open (or re-open) at the threshold or after a failed trial."""
        self._failures += 1
        if self._trial_running or self._failures >= self._threshold:
            self._opened_at = self._clock()
        self._trial_running = False

    def abandon(self) -> None:
        """A call ended without a verdict (cancelled): free the half-open trial slot."""
        self._trial_running = False
