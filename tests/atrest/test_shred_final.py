"""Shred is final within the documented bound: the issue's recovery methods, root key in hand.

SQLite: WAL replay of the live files (every commit the WAL still holds), and a byte search
of the database, WAL and SHM files.  PostgreSQL: `pageinspect` over every page after VACUUM.
PKCS#11: a copy of the database taken before the shred.  Each test first shows the method
recovering a value (so finding nothing later means something), then the bound.
docs/keys.md, "The bound per provider", states what each provider promises.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from coatcheck.vault import ConversationShredded, Grant, _crypto, make_engine, upgrade
from coatcheck.vault._keycache import EpochKeys, value_aad
from coatcheck.vault._statements import CONV, VAL
from coatcheck.vault.keys import KeyProvider
from tests.atrest.conftest import PAST_BOUND, VaultFactory, is_pg, sqlite_file
from tests.atrest.recovery import holds, pg_pages, read_files, recover, sqlite_findings
from tests.conftest import FakeClock

VICTIM = "victim.canary@example.org"
BYSTANDER = "bystander.canary@example.org"
TABLES = ("conversations", "stored_values", "kek_buckets", "key_objects", "keks")


def _secrets(engine: Engine, conversation_id: str) -> tuple[str, bytes, bytes, bytes]:
    """(KEK id, its record, the epoch's wrapped data key, the value's ciphertext) now."""
    from coatcheck.vault._keks import BUCKETS

    with engine.connect() as conn:
        epoch = conn.execute(
            select(CONV.c.id, CONV.c.kek_id, CONV.c.wrapped_dek).where(
                CONV.c.conversation_id == conversation_id
            )
        ).one()
        record = conn.execute(
            select(BUCKETS.c.record).where(BUCKETS.c.kek_id == epoch.kek_id)
        ).scalar_one()
        ciphertext = conn.execute(
            select(VAL.c.ciphertext).where(VAL.c.conversation_pk == epoch.id)
        ).scalar_one()
    return epoch.kek_id, bytes(record), bytes(epoch.wrapped_dek), bytes(ciphertext)


def _grant(conversation_id: str, clock: FakeClock) -> Grant:
    return Grant(conversation_id, frozenset({"EMAIL"}), "p", "test", clock.now + 30)


def test_sqlite_wal_replay_finds_nothing_once_the_shred_settled(
    tmp_path: Path, make_vault: VaultFactory, file_provider: KeyProvider
) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    upgrade(url)
    vault = make_vault(url, file_provider)
    for n in range(20):  # neighbours on the same pages, under the same bucket KEK
        vault.tokenize_many(
            f"c{n}", [("EMAIL", f"user{n}@example.org"), ("PHONE", f"+1555{n:07d}")]
        )
    vault.tokenize_many("victim", [("EMAIL", VICTIM), ("PHONE", "+15550199999")])
    vault.tokenize("bystander", "EMAIL", BYSTANDER)
    engine = make_engine(url)
    wrapped, ciphertexts = _wrapped_and_ciphertexts(engine, "victim")
    engine.dispose()
    path = sqlite_file(url)
    db, wal, _ = read_files(path)
    assert wal, "the WAL holds the recent commits"
    assert VICTIM in recover(sqlite_findings([(db, wal)]), file_provider)  # the method works

    vault.shred("victim", "admin")

    db, wal, shm = read_files(path)
    assert wal == b""  # checkpointed and truncated: no frame keeps a page from before
    opened = recover(sqlite_findings([(db, wal)]), file_provider)
    assert BYSTANDER in opened and VICTIM not in opened
    for secret in (wrapped, *ciphertexts):  # secure_delete zeroed the freed cells
        assert not holds([db, wal, shm], secret)


def _wrapped_and_ciphertexts(engine: Engine, conversation_id: str) -> tuple[bytes, list[bytes]]:
    with engine.connect() as conn:
        pk, wrapped = conn.execute(
            select(CONV.c.id, CONV.c.wrapped_dek).where(CONV.c.conversation_id == conversation_id)
        ).one()
        rows = conn.execute(select(VAL.c.ciphertext).where(VAL.c.conversation_pk == pk))
        return bytes(wrapped), [bytes(c) for c in rows.scalars()]


def test_postgres_pageinspect_after_vacuum_finds_no_kek_past_the_bound(
    db_url: str, make_vault: VaultFactory, file_provider: KeyProvider, clock: FakeClock
) -> None:
    if not is_pg(db_url):
        pytest.skip("pageinspect is PostgreSQL's")
    vault = make_vault(db_url, file_provider)
    ref = vault.tokenize("victim", "EMAIL", VICTIM)
    engine = make_engine(db_url)
    kek_id, record, wrapped, ciphertext = _secrets(engine, "victim")
    vault.shred("victim", "admin")
    pages = pg_pages(engine, TABLES)
    # Right after the shred the dead tuples hold everything, and with the root key it
    # opens: row deletion alone is not the bound (the finding).
    assert holds(pages, record) and holds(pages, wrapped) and holds(pages, ciphertext)
    dek = file_provider.open_kek(kek_id, record).unwrap(wrapped, _dek_context("victim", kek_id))
    aad = value_aad("t1", "victim", 1, ref, "EMAIL")
    assert EpochKeys(dek).sealer.open(ciphertext, aad).decode() == VICTIM

    clock.now += PAST_BOUND
    done = vault.maintain()  # the bucket ended and nothing in it survives
    assert done.destroyed >= 1 and done.settled
    pages = pg_pages(engine, TABLES)
    engine.dispose()
    assert not holds(pages, record)  # the vault's VACUUM (FULL) kek_buckets: no page keeps it
    # The wrapped data key may linger in a dead tuple: without its KEK it opens nothing.


def _dek_context(conversation_id: str, kek_id: str) -> bytes:
    return _crypto.aad("dek", "t1", conversation_id, 1, kek_id)


@pytest.mark.parametrize("kind", ["pkcs11", "file"])
def test_a_copy_taken_before_the_shred_per_provider(
    kind: str,
    request: pytest.FixtureRequest,
    db_url: str,
    make_vault: VaultFactory,
    copy_database: Callable[[str], str],
    clock: FakeClock,
) -> None:
    """PKCS#11: the copy opens nothing once the token KEK is destroyed.  Key file: the copy
    still opens with the root key (the stated host bound: live files only)."""
    provider: KeyProvider = request.getfixturevalue(
        "token_provider" if kind == "pkcs11" else "file_provider"
    )
    vault = make_vault(db_url, provider)
    ref = vault.tokenize("victim", "EMAIL", VICTIM)
    backup = copy_database(db_url)
    vault.shred("victim", "admin")
    clock.now += PAST_BOUND
    assert vault.maintain().destroyed >= 1

    restored = make_vault(backup, provider)
    if kind == "pkcs11":
        with pytest.raises(ConversationShredded):
            restored.reveal("victim", ref, _grant("victim", clock))
        assert restored.audit_rows(action="reveal")[0].outcome == "shredded"
    else:
        assert restored.reveal("victim", ref, _grant("victim", clock)) == VICTIM
