"""Bucket KEKs: which KEK wraps what, survivors moved before a destroy, one KEK per bucket
under a race, and the bound (a bucket's KEK goes `grace` after it ended)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, select

from coatcheck.vault import ConversationShredded, Grant, Policies, Retention, ValueState, Vault
from coatcheck.vault._keks import BUCKETS
from coatcheck.vault._statements import CONV
from coatcheck.vault.keys import KeyProvider
from tests.atrest.conftest import DAY, GRACE, VaultFactory
from tests.conftest import FakeClock

POLICIES = Policies(retention={"EMAIL": Retention("mask"), "PHONE": Retention("retain", 30 * DAY)})


def _kek_of(engine: Engine, conversation_id: str) -> tuple[str, str, float | None]:
    """(kek id, kind, bucket end) of the conversation's newest epoch."""
    with engine.connect() as conn:
        row = conn.execute(
            select(BUCKETS.c.kek_id, BUCKETS.c.kind, BUCKETS.c.bucket_end)
            .join(CONV, CONV.c.kek_id == BUCKETS.c.kek_id)
            .where(CONV.c.conversation_id == conversation_id)
            .order_by(CONV.c.epoch.desc())
        ).first()
    assert row is not None
    return row.kek_id, row.kind, row.bucket_end


def _state(engine: Engine, kek_id: str) -> tuple[str, bytes | None]:
    with engine.connect() as conn:
        row = conn.execute(
            select(BUCKETS.c.state, BUCKETS.c.record).where(BUCKETS.c.kek_id == kek_id)
        ).one()
    return row.state, row.record


def _staff(vault: Vault, conversation_id: str, ref: str) -> str:
    allow = lambda state: None if isinstance(state, ValueState) else "no"  # noqa: E731
    return vault.reveal_for(
        conversation_id, ref, actor="auditor", purpose="reporting", policy=allow
    )


def test_new_epochs_wrap_under_the_live_kek_of_their_day(
    vault: Vault, engine: Engine, clock: FakeClock
) -> None:
    vault.tokenize("a", "EMAIL", "a@example.org")
    vault.tokenize("b", "EMAIL", "b@example.org")
    kek_a, kind, end = _kek_of(engine, "a")
    assert kek_a == _kek_of(engine, "b")[0] and kind == "live"
    assert end is not None and end - DAY <= clock.now < end
    clock.now += DAY
    vault.tokenize("c", "EMAIL", "c@example.org")
    assert _kek_of(engine, "c")[0] != kek_a  # the next day, the next bucket


def test_survivors_move_home_and_the_ended_bucket_kek_is_destroyed(
    db_url: str,
    engine: Engine,
    make_vault: VaultFactory,
    master_key: bytes | KeyProvider,
    clock: FakeClock,
) -> None:
    vault = make_vault(db_url, master_key, policies=POLICIES)
    long_ref = vault.tokenize("long", "CARD", "4111111111111111")  # stays active for days
    masked_ref = vault.tokenize("masked", "EMAIL", "m@example.org")
    kept_ref = vault.tokenize("kept", "PHONE", "+14155550100")
    vault.tokenize("gone", "CARD", "5555555555554444")
    for cid in ("masked", "kept", "gone"):
        vault.end(cid, "bot", "api")
    day_kek, _, day_end = _kek_of(engine, "long")
    assert day_end is not None

    clock.now = day_end + GRACE / 2  # the bucket ended, but within grace nothing moves
    assert vault.maintain().destroyed == 0 and _kek_of(engine, "long")[0] == day_kek
    clock.now = day_end + GRACE + 1
    done = vault.maintain()
    assert done.moved == 3 and done.destroyed == 1
    assert _state(engine, day_kek) == ("destroyed", None)  # the record is erased too
    assert _kek_of(engine, "long")[1:] == ("live", pytest.approx((clock.now // DAY + 1) * DAY))
    assert _kek_of(engine, "masked")[1:] == ("kept", None)  # masked for good: kept forever
    kind, end = _kek_of(engine, "kept")[1:]
    assert kind == "kept" and end is not None and end >= clock.now + 28 * DAY  # its deadline's
    grant = Grant("long", frozenset({"CARD"}), "p", "t", clock.now + 30)
    assert vault.reveal("long", long_ref, grant) == "4111111111111111"
    assert _staff(vault, "masked", masked_ref) == "m@example.org"
    assert _staff(vault, "kept", kept_ref) == "+14155550100"
    assert [r.action for r in vault.audit_rows(action="kek_destroy")] == ["kek_destroy"]


def test_a_retained_bucket_dies_after_its_deadline(
    db_url: str,
    engine: Engine,
    make_vault: VaultFactory,
    master_key: bytes | KeyProvider,
    clock: FakeClock,
) -> None:
    vault = make_vault(db_url, master_key, policies=POLICIES)
    ref = vault.tokenize("kept", "PHONE", "+14155550100")
    vault.end("kept", "bot", "api")
    clock.now += DAY + GRACE + 1
    vault.maintain()
    kept_kek = _kek_of(engine, "kept")[0]
    clock.now += 31 * DAY + GRACE
    vault.expire_due()  # the sweeper's order: expiries, then keys
    assert vault.maintain().destroyed >= 1
    assert _state(engine, kept_kek)[0] == "destroyed"
    with pytest.raises(ConversationShredded):
        _staff(vault, "kept", ref)


def test_workers_racing_for_a_new_bucket_keep_one_kek(
    db_url: str,
    make_vault: VaultFactory,
    token_provider: KeyProvider,
    clock: FakeClock,
    engine: Engine,
) -> None:
    vaults = [make_vault(db_url, token_provider) for _ in range(4)]
    clock.now += DAY  # a bucket nobody has made yet
    barrier = threading.Barrier(len(vaults))
    refs: list[str] = []

    def first_message(n: int) -> None:
        barrier.wait()
        refs.append(vaults[n].tokenize(f"c{n}", "EMAIL", f"{n}@example.org"))

    threads = [threading.Thread(target=first_message, args=(n,)) for n in range(len(vaults))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(refs) == len(vaults)
    with engine.connect() as conn:
        rows = conn.execute(
            select(BUCKETS.c.kek_id).where(BUCKETS.c.bucket_start == (clock.now // DAY) * DAY)
        ).all()
    assert len(rows) == 1  # one KEK per bucket ...
    from pkcs11 import Attribute, ObjectClass

    from coatcheck.vault.keys.pkcs11 import _LOCK

    with _LOCK:  # ... and on the token only the keys in use: the losers destroyed theirs
        session = token_provider._session  # type: ignore[attr-defined]
        objects = list(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}))
    assert len(objects) == 1 + 2  # the root, yesterday's live KEK, today's
