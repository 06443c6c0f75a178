"""The cached fast paths keep the guarantees: shred seen at once, batches audited, races safe."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, event, select, text

from coatcheck.vault import (
    ConversationShredded,
    Grant,
    GrantRefused,
    UnknownReference,
    Vault,
    make_engine,
)
from coatcheck.vault._keycache import KNOWN_PER_EPOCH, EpochKeys
from coatcheck.vault.lifecycle import Policies
from coatcheck.vault.models import AuditRow, StoredValue
from tests.conftest import PG_URL, FakeClock, kill_pooled_backend


def grant(clock: FakeClock, conv: str = "c1", types: tuple[str, ...] = ("EMAIL",)) -> Grant:
    return Grant(conv, frozenset(types), "support", "action_x", clock.now + 30)


@pytest.mark.parametrize("batch", [1, 3])
def test_shred_by_another_worker_is_seen_by_the_cached_tokenizer(
    vault: Vault, db_url: str, master_key: bytes, clock: FakeClock, batch: int
) -> None:
    values = [("EMAIL", f"u{i}@x.io") for i in range(batch)]
    old = vault.tokenize_many("c1", values)  # caches the epoch
    assert vault.tokenize_many("c1", values) == old  # fast path, known values
    other = Vault(make_engine(db_url), master_key, tenant="t1", clock=clock)
    other.shred("c1", actor="ops")
    new = vault.tokenize_many("c1", values)  # cached epoch is gone: new epoch, new refs
    assert set(new).isdisjoint(old)
    assert vault.reveal("c1", new[0], grant(clock)) == "u0@x.io"
    with pytest.raises(ConversationShredded):
        vault.reveal("c1", old[0], grant(clock))
    with pytest.raises(ConversationShredded):
        other.reveal("c1", old[0], grant(clock))
    assert other.reveal("c1", new[-1], grant(clock)) == values[-1][1]


def test_fast_path_stores_nothing_for_a_shredded_epoch(
    vault: Vault, engine: Engine, db_url: str, master_key: bytes, clock: FakeClock
) -> None:
    vault.tokenize("c1", "EMAIL", "first@x.io")
    Vault(make_engine(db_url), master_key, tenant="t1", clock=clock).shred("c1", "ops")
    ref = vault.tokenize("c1", "EMAIL", "second@x.io")
    with engine.begin() as conn:
        rows = conn.execute(
            select(StoredValue.ref, StoredValue.ciphertext).where(StoredValue.ref == ref)
        ).all()
    assert len(rows) == 1 and rows[0].ciphertext is not None
    assert vault.reveal("c1", ref, grant(clock)) == "second@x.io"


def test_reveal_many_returns_in_order_and_audits_each(vault: Vault, clock: FakeClock) -> None:
    refs = vault.tokenize_many("c1", [("EMAIL", "a@x.io"), ("EMAIL", "b@x.io")])
    assert vault.reveal_many("c1", [refs[1], refs[0], refs[1]], grant(clock)) == [
        "b@x.io",
        "a@x.io",
        "b@x.io",
    ]
    assert vault.reveal_many("c1", [], grant(clock)) == []
    rows = vault.audit_rows(action="reveal")
    assert [(r.ref, r.outcome) for r in reversed(rows)] == [
        (refs[1], "ok"),
        (refs[0], "ok"),
        (refs[1], "ok"),
    ]
    assert vault.verify_audit().ok


@pytest.mark.parametrize(
    ("second", "error", "outcome"),
    [
        ("unknown", UnknownReference, "unknown"),
        ("phone", GrantRefused, "refused"),
    ],
)
def test_reveal_many_is_all_or_nothing_and_audits_only_the_failure(
    vault: Vault, clock: FakeClock, second: str, error: type[Exception], outcome: str
) -> None:
    good = vault.tokenize("c1", "EMAIL", "a@x.io")
    bad = "zzzzzzzzzz" if second == "unknown" else vault.tokenize("c1", "PHONE", "+15550100")
    with pytest.raises(error):
        vault.reveal_many("c1", [good, bad], grant(clock))  # grant covers EMAIL only
    rows = vault.audit_rows(action="reveal")
    assert [(r.ref, r.outcome) for r in rows] == [(bad, outcome)]
    assert vault.verify_audit().ok


def test_audit_head_guess_survives_another_writer(
    vault: Vault, engine: Engine, db_url: str, master_key: bytes, clock: FakeClock
) -> None:
    ref = vault.tokenize("c1", "EMAIL", "a@x.io")
    other = Vault(make_engine(db_url), master_key, tenant="t1", clock=clock)
    for _ in range(3):  # each worker's guess of the chain head is stale every other call
        assert vault.reveal("c1", ref, grant(clock)) == "a@x.io"
        assert other.reveal("c1", ref, grant(clock)) == "a@x.io"
    report = vault.verify_audit()
    assert report.ok and report.rows == 6
    with engine.begin() as conn:
        ids = conn.execute(select(AuditRow.id).order_by(AuditRow.id)).scalars().all()
    assert ids == list(range(1, 7))


@pytest.mark.postgres
@pytest.mark.skipif(PG_URL is None, reason="COATCHECK_TEST_PG_URL not set")
def test_idle_connection_killed_by_the_server_is_replaced() -> None:
    assert PG_URL is not None
    engine = make_engine(PG_URL, ping_after_idle_s=0.0, pool_size=1, max_overflow=0)
    try:
        pid = kill_pooled_backend(engine)
        with engine.connect() as conn:  # the idle ping finds it dead; the pool reconnects
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()


# --- remembered references (EpochKeys.recall/learn) -------------------------------------


def _statements(engine: Engine, work: Callable[[], object]) -> list[str]:
    """The SQL statements `work` runs on `engine`'s pool (its vault's)."""
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement.lstrip().split(None, 1)[0].upper())

    event.listen(engine, "before_cursor_execute", record)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_a_value_sent_again_costs_no_insert_and_no_lookup(
    engine: Engine, master_key: bytes, clock: FakeClock
) -> None:
    vault = Vault(engine, master_key, tenant="t1", clock=clock)
    ref = vault.tokenize("c1", "SENDER_ID", "+4915112345678")
    # the first repeat still finds it by SQL (stored before this epoch's keys knew it)...
    assert vault.tokenize("c1", "SENDER_ID", "+4915112345678") == ref
    again = _statements(engine, lambda: vault.tokenize("c1", "SENDER_ID", "+4915112345678"))
    assert "INSERT" not in again and again.count("SELECT") == 1  # the liveness check only
    mixed = _statements(
        engine,
        lambda: vault.tokenize_many("c1", [("SENDER_ID", "+4915112345678"), ("EMAIL", "n@x.io")]),
    )
    assert mixed.count("INSERT") == 1  # only the new value; its INSERT checks liveness
    assert vault.reveal("c1", ref, grant(clock, types=("SENDER_ID",))) == "+4915112345678"


@pytest.mark.parametrize("how", ["end", "shred", "subject_erase"])
def test_a_remembered_value_is_stored_again_after_another_worker_ends_the_epoch(
    vault: Vault, db_url: str, master_key: bytes, clock: FakeClock, how: str
) -> None:
    sender = "+4915112345678"
    cid = vault.pseudonym(sender)  # a channel's conversation: its sender's pseudonym
    old = vault.tokenize(cid, "SENDER_ID", sender)
    assert vault.tokenize(cid, "SENDER_ID", sender) == old  # found by SQL, remembered
    assert vault.tokenize(cid, "SENDER_ID", sender) == old  # remembered
    other = Vault(make_engine(db_url), master_key, tenant="t1", clock=clock)
    if how == "end":
        other.end(cid, "ops", "idle")
    elif how == "shred":
        other.shred(cid, "ops")
    else:
        other.subject_erase(sender, "ops")
    new = vault.tokenize(cid, "SENDER_ID", sender)
    assert new != old
    assert other.reveal(cid, new, grant(clock, cid, ("SENDER_ID",))) == sender


def test_values_that_expire_are_not_remembered(
    engine: Engine, db_url: str, master_key: bytes, clock: FakeClock
) -> None:
    policies = Policies(ttl={"PIN": 60})
    vault = Vault(engine, master_key, tenant="t1", clock=clock, policies=policies)
    first = vault.tokenize("c1", "PIN", "4711")
    assert vault.tokenize("c1", "PIN", "4711") == first  # found by SQL each time
    vault.tokenize("c1", "EMAIL", "keep@x.io")  # the epoch outlives the PIN
    clock.now += 61
    other = Vault(make_engine(db_url), master_key, tenant="t1", clock=clock, policies=policies)
    assert other.expire_due().forgotten == 1
    second = vault.tokenize("c1", "PIN", "4711")  # same epoch, the old row is gone
    assert second != first
    assert vault.reveal("c1", second, grant(clock, types=("PIN",))) == "4711"


def test_a_rolled_back_value_is_not_remembered(vault: Vault, clock: FakeClock) -> None:
    vault.tokenize("c1", "EMAIL", "first@x.io")  # the epoch is cached

    def refuse(tx: object, refs: list[str]) -> None:
        raise RuntimeError("the caller's rows failed")

    with pytest.raises(RuntimeError):
        vault.tokenize_many("c1", [("EMAIL", "later@x.io")], then=refuse)
    ref = vault.tokenize("c1", "EMAIL", "later@x.io")
    assert vault.reveal("c1", ref, grant(clock)) == "later@x.io"


def test_an_epochs_memory_of_refs_is_bounded() -> None:
    keys = EpochKeys(bytes(32))
    learned = {("EMAIL", bytes([i]) * 32): f"ref{i}" for i in range(KNOWN_PER_EPOCH + 8)}
    for key, ref in learned.items():
        keys.learn({key: ref})
    remembered = keys.recall(learned)
    assert 0 < len(remembered) <= KNOWN_PER_EPOCH
    assert all(learned[key] == ref for key, ref in remembered.items())
