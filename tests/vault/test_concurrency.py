"""Races: many workers tokenizing one value, and rotation under live traffic."""

from __future__ import annotations

import multiprocessing
import os
import threading
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from coatcheck.vault import Grant, Vault, make_engine
from coatcheck.vault._storage import Storage
from coatcheck.vault.keys import KeyProvider, ProviderSettings
from tests.conftest import BACKENDS, FakeClock, open_keys

WORKERS = 8


def _tokenize_in_new_vault(
    url: str, spec: bytes | ProviderSettings | KeyProvider, conversation: str = "race"
) -> str:
    """In a new vault (and, given settings, on a provider opened here: another process)."""
    engine = make_engine(url)
    keys = open_keys(spec) if isinstance(spec, ProviderSettings) else spec
    try:
        return Vault(engine, keys, tenant="t1").tokenize(conversation, "EMAIL", "same@x.io")
    finally:
        engine.dispose()
        if isinstance(spec, ProviderSettings) and isinstance(keys, KeyProvider):
            keys.close()


def test_threads_tokenizing_one_value_get_one_ref(db_url: str, master_key: bytes) -> None:
    barrier = threading.Barrier(WORKERS)

    def work(_: int) -> str:
        barrier.wait()
        return _tokenize_in_new_vault(db_url, master_key)

    with ThreadPoolExecutor(WORKERS) as pool:
        refs = set(pool.map(work, range(WORKERS)))
    assert len(refs) == 1


def test_processes_tokenizing_one_value_get_one_ref(
    db_url: str, key_spec: bytes | ProviderSettings
) -> None:
    # Today's KEK exists before the workers start: on SoftHSM2 a token object that another
    # process creates meanwhile may stay hidden from a worker (docs/keys.md, "PKCS#11");
    # the race under test is the database's, one conversation's first value.
    _tokenize_in_new_vault(db_url, key_spec, conversation="warm-up")
    try:
        refs = _race_in_processes(db_url, key_spec)
    except BrokenProcessPool:
        # A worker process died mid-call (seen once in CI, on SoftHSM2 with eight processes
        # opening one token file store; with `multiprocessing.Pool` the lost task hung the
        # run for good). Not the race under test: report it and run the round once more.
        warnings.warn("a tokenizing worker process died; the round is run again", stacklevel=1)
        refs = _race_in_processes(db_url, key_spec)
    assert len(refs) == 1


def _race_in_processes(url: str, spec: bytes | ProviderSettings) -> set[str]:
    """One value tokenized by WORKERS new processes at once; their refs. A worker that dies
    raises BrokenProcessPool here (and the round gives up after 120 s) instead of hanging."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(WORKERS, mp_context=ctx) as pool:
        calls = [pool.submit(_tokenize_in_new_vault, url, spec) for _ in range(WORKERS)]
        return {call.result(timeout=120) for call in calls}


def test_rotation_while_tokenizing_and_revealing(
    db_url: str, master_key: bytes, clock: FakeClock
) -> None:
    seed = Vault(make_engine(db_url), master_key, tenant="t1", clock=clock)
    existing = {f"c{i}": seed.tokenize(f"c{i}", "EMAIL", f"user{i}@x.io") for i in range(30)}
    failures: list[BaseException] = []
    stop = threading.Event()

    def traffic(worker: int) -> None:
        engine = make_engine(db_url)
        other = Vault(engine, master_key, tenant="t1", clock=clock)
        n = 0
        try:
            while not stop.is_set() or n < 20:
                conv = f"c{n % 30}"
                g = Grant(conv, frozenset({"EMAIL"}), "p", "w", clock.now + 30)
                assert other.reveal(conv, existing[conv], g) == f"user{n % 30}@x.io"
                ref = other.tokenize(f"new{worker}-{n}", "EMAIL", os.urandom(4).hex())
                assert other.lookup(f"new{worker}-{n}", ref).entity_type == "EMAIL"
                n += 1
        except BaseException as exc:
            failures.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=traffic, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    rotations = [seed.rotate("admin", batch=7) for _ in range(3)]
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
    # Each rotation retired the live KEK (and any made meanwhile) and moved every data key
    # under it, the 30 seeded epochs and the traffic's new ones among them.
    assert all(r.destroyed >= 1 and r.moved >= 30 for r in rotations)
    fresh = Vault(make_engine(db_url), master_key, tenant="t1", clock=clock)
    for conv, ref in existing.items():
        g = Grant(conv, frozenset({"EMAIL"}), "p", "w", clock.now + 30)
        assert fresh.reveal(conv, ref, g).endswith("@x.io")
    assert fresh.verify_audit().ok


@pytest.mark.parametrize("db_url", [BACKENDS[1]], indirect=True)
def test_a_transaction_postgres_breaks_out_of_a_deadlock_is_run_again(db_url: str) -> None:
    """Two transactions lock two rows in opposite orders: PostgreSQL rolls one back
    (40P01); the vault's `retry` runs that one again instead of failing the request."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE race (id int PRIMARY KEY, n int)"))
        conn.execute(text("INSERT INTO race VALUES (1, 0), (2, 0)"))
    storage = Storage(engine, "t1", FakeClock(), retries=3)
    both_hold_one = threading.Barrier(2)
    attempts: list[int] = []

    def bump(first: int, second: int) -> str:
        def work(conn: Connection) -> str:
            attempts.append(first)
            conn.execute(text("UPDATE race SET n = n + 1 WHERE id = :i"), {"i": first})
            if len(attempts) <= 2:  # only the first round meets at the barrier
                both_hold_one.wait(timeout=10)
            conn.execute(text("UPDATE race SET n = n + 1 WHERE id = :i"), {"i": second})
            return "done"

        return storage.retry("race", work)

    try:
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(bump, (1, 2), (2, 1)))
        assert results == ["done", "done"]
        assert len(attempts) > 2  # the deadlock's loser ran again
        with engine.connect() as conn:
            assert conn.execute(text("SELECT sum(n) FROM race")).scalar() == 4
    finally:
        engine.dispose()
