"""CircuitBreaker state machine on an injected clock (no HTTP needed to drive it)."""

from __future__ import annotations

import pytest

from coatcheck.middleware.external import BreakerState, CircuitBreaker, CircuitOpen
from tests.external.loopback import FakeClock

# (events, expected state after them); "f" failure, "s" success, "t" clock += 10, "c" call
CASES: list[tuple[str, BreakerState]] = [
    ("", BreakerState.CLOSED),
    ("ff", BreakerState.CLOSED),
    ("fff", BreakerState.OPEN),
    ("ffsff", BreakerState.CLOSED),  # a success resets the count
    ("ffft", BreakerState.OPEN),  # 10 s of a 30 s cool-down
    ("ffftttt", BreakerState.HALF_OPEN),
    ("fffttt" + "cf", BreakerState.OPEN),  # failed trial re-opens at once
    ("fffttt" + "cs", BreakerState.CLOSED),
    ("fffttt" + "cft", BreakerState.OPEN),  # and the cool-down starts over
]


def drive(events: str) -> tuple[CircuitBreaker, FakeClock]:
    clock = FakeClock()
    breaker = CircuitBreaker("cust", threshold=3, cooldown=30, clock=clock)
    for event in events:
        if event == "f":
            breaker.record_failure()
        elif event == "s":
            breaker.record_success()
        elif event == "t":
            clock.now += 10
        else:
            breaker.before_call()
    return breaker, clock


@pytest.mark.parametrize(("events", "state"), CASES)
def test_breaker_states(events: str, state: BreakerState) -> None:
    breaker, _ = drive(events)
    assert breaker.state is state
    assert state.value in repr(breaker)


def test_open_breaker_refuses_calls() -> None:
    breaker, _ = drive("fff")
    with pytest.raises(CircuitOpen) as info:
        breaker.before_call()
    assert info.value.endpoint == "cust"


def test_half_open_lets_one_trial_through() -> None:
    breaker, _ = drive("fffttt")
    breaker.before_call()
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    breaker.abandon()  # a cancelled trial frees the slot
    breaker.before_call()


def test_closed_breaker_allows_calls() -> None:
    breaker, _ = drive("ff")
    breaker.before_call()
    breaker.before_call()
    assert breaker.state is BreakerState.CLOSED
