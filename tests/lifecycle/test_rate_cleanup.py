"""The sweeper drops rate counters of windows that are over; the current window's stay."""

from __future__ import annotations

from gateway_helpers import Service, StubBot
from lifecycle_helpers import say_refs
from sqlalchemy import select

from coatcheck.middleware.models import RateCounter


def _counters(life: Service) -> list[tuple[str, int]]:
    with life.services.engine.connect() as conn:
        rows = conn.execute(
            select(RateCounter.sender, RateCounter.count).order_by(RateCounter.sender)
        )
        # the channel key's own counter (issue 19) sits beside the senders', marked \x1f
        return [(r.sender, r.count) for r in rows if not r.sender.startswith("\x1f")]


def test_past_windows_are_dropped_and_the_current_one_counts_on(
    life: Service, stub_bot: StubBot
) -> None:
    window = life.services.sweeper.rate_window
    say_refs(life, stub_bot, "old-a", "hello")
    say_refs(life, stub_bot, "old-b", "hello")
    assert life.services.sweeper.sweep_once().rate_rows_dropped == 0  # the window is not over yet
    life.clock.now += window
    say_refs(life, stub_bot, "now", "hello")
    say_refs(life, stub_bot, "now", "again")
    cid = life.cid  # rate counters are keyed by the sender's pseudonym
    assert sorted(_counters(life)) == sorted(
        [(cid("now"), 2), (cid("old-a"), 1), (cid("old-b"), 1)]
    )
    # in batches of one: old-a's, old-b's and the channel key's counter of the old window
    assert life.services.sweeper.sweep_once(batch=1).rate_rows_dropped == 3
    assert _counters(life) == [(cid("now"), 2)]
    say_refs(life, stub_bot, "now", "third")
    assert _counters(life) == [(cid("now"), 3)]
    assert life.services.sweeper.sweep_once().rate_rows_dropped == 0
