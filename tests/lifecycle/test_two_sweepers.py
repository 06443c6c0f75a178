"""Two workers sweeping one PostgreSQL database at once: every end and expiry happens once.

Two apps (two engines, two vaults, the state of two uvicorn workers) share one database;
their sweepers start together behind a barrier in two threads, with a small batch so
their passes interleave.  Counted in the audit log, which both append to.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from gateway_helpers import Service, StubBot
from lifecycle_helpers import CARD, DAY, EMAIL, IDLE, PHONE, SSN, audit, say_refs

from coatcheck.middleware.gateway.sweeper import SweepReport
from tests.conftest import BACKENDS

# PostgreSQL only (the race is about its row locks; SQLite has one writer at a time).
POSTGRES_ONLY = pytest.mark.parametrize("db_url", [BACKENDS[1]], indirect=True)

TTL = 15 * 60.0
N = 12


def race(workers: list[Service]) -> list[SweepReport]:
    barrier = threading.Barrier(len(workers))
    reports: list[SweepReport | None] = [None] * len(workers)
    failures: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(10)
            reports[i] = workers[i].services.sweeper.sweep_once(batch=3)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    assert all(r is not None for r in reports)
    return [r for r in reports if r is not None]


def advance(workers: list[Service], seconds: float) -> None:
    for worker in workers:
        worker.clock.now += seconds


@pytest.fixture
def workers(life_factory: Callable[..., Service], db_url: str, stub_bot: StubBot) -> list[Service]:
    assert db_url.startswith("postgresql")
    pair = [life_factory(), life_factory()]
    for i in range(N):
        full = f"mail {EMAIL}, call {PHONE}, card {CARD}, ssn {SSN}"
        assert len(say_refs(pair[i % 2], stub_bot, f"full-{i}", full)) == 4
        assert len(say_refs(pair[i % 2], stub_bot, f"phone-{i}", f"call me on {PHONE}")) == 1
        assert len(say_refs(pair[i % 2], stub_bot, f"ssn-{i}", f"ssn {SSN}")) == 1
    return pair


@POSTGRES_ONLY
def test_two_sweepers_each_expiry_and_end_happens_once(workers: list[Service]) -> None:
    one = workers[0]
    # 1. TTL: every SSN value is forgotten exactly once, by one worker or the other.
    advance(workers, TTL)
    reports = race(workers)
    assert sum(r.forgotten for r in reports) == 2 * N
    expiries = Counter((r.conversation_id, r.ref) for r in audit(one, action="expire"))
    assert len(expiries) == 2 * N and set(expiries.values()) == {1}
    # 2. Idle timeout: every conversation is ended exactly once.
    advance(workers, IDLE)
    reports = race(workers)
    ended = [c for r in reports for c in r.ended]
    names = [f"{k}-{i}" for k in ("full", "phone", "ssn") for i in range(N)]
    assert sorted(ended) == sorted(one.cid(n) for n in names)  # kept by pseudonym
    ends = Counter(r.conversation_id for r in audit(one, action="end"))
    assert len(ends) == 3 * N and set(ends.values()) == {1}
    assert all(r.actor == "sweeper" for r in audit(one, action="end"))
    assert one.services.records.status(one.cid("full-0")) == "masked"
    assert one.services.records.status(one.cid("phone-0")) == "retained"
    assert one.services.records.status(one.cid("ssn-0")) == "shredded"
    # 3. Retention deadline: each retained phone is shredded once; phone-only epochs lose
    #    their key once; epochs still holding a masked e-mail keep theirs.
    advance(workers, DAY)
    reports = race(workers)
    assert sum(r.forgotten for r in reports) == 2 * N
    assert sum(r.shredded_epochs for r in reports) == N
    retention = Counter(
        (r.conversation_id, r.ref) for r in audit(one, action="expire") if r.purpose == "retention"
    )
    assert len(retention) == 2 * N and set(retention.values()) == {1}
    shreds = Counter(r.conversation_id for r in audit(one, action="shred"))
    assert sorted(shreds) == sorted(one.cid(f"phone-{i}") for i in range(N))
    assert set(shreds.values()) == {1}
    assert one.services.records.status(one.cid("phone-0")) == "shredded"
    assert one.services.records.status(one.cid("full-0")) == "masked"
    # Nothing left to do, for either worker; the chain both appended to verifies.
    assert race(workers) == [SweepReport(), SweepReport()]
    assert one.services.vault.verify_audit().ok


@POSTGRES_ONLY
def test_concurrent_ends_of_one_conversation_end_it_once(workers: list[Service]) -> None:
    """The bot's end on one worker, the API's on the other, at once: one end, one outcome."""
    conversations = [workers[0].cid(f"full-{i}") for i in range(N)]
    results: dict[str, list[bool]] = {c: [] for c in conversations}
    failures: list[BaseException] = []

    def run(worker: Service, actor: str, reason: str, barrier: threading.Barrier) -> None:
        for conversation_id in conversations:
            try:
                barrier.wait(10)
                result = worker.services.lifecycle.end(conversation_id, actor, reason)
                results[conversation_id].append(result.ended)
                assert result.status == "masked"
            except BaseException as exc:
                failures.append(exc)

    barrier = threading.Barrier(2)
    threads = [
        threading.Thread(target=run, args=(workers[0], "bot", "bot", barrier)),
        threading.Thread(target=run, args=(workers[1], "channel", "api", barrier)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    assert all(sorted(flags) == [False, True] for flags in results.values())
    done = Counter(
        r.conversation_id for r in audit(workers[0], action="end") if r.outcome != "noop"
    )
    assert done == Counter({c: 1 for c in conversations})
