"""The audit chain at the vault: MAC links, the one-event switch from SHA-256, incremental
verification, verification records and checkpoints (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import Engine, delete, insert, select, update

from coatcheck.vault import AuditChainTampered, Grant, Vault, _crypto
from coatcheck.vault._chain import FORMAT_ACTION, GENESIS, mac_link, sha_link
from coatcheck.vault.audit import AuditRecord
from coatcheck.vault.keys import Checkpoint, InvalidCheckpoint, KeyProvider, verify_checkpoint
from coatcheck.vault.models import AuditHead, AuditRow, AuditVerification, KeyObject
from tests.atrest.conftest import VaultFactory
from tests.conftest import FakeClock

LOG, HEAD = AuditRow.__table__, AuditHead.__table__
RESULTS, OBJECTS = AuditVerification.__table__, KeyObject.__table__


def _activity(vault: Vault, clock: FakeClock, reveals: int = 3) -> None:
    ref = vault.tokenize("c1", "EMAIL", "a@x.io")
    grant = Grant("c1", frozenset({"EMAIL"}), "p", "agent", clock.now + 30)
    for _ in range(reveals):
        vault.reveal("c1", ref, grant)


def _records(engine: Engine) -> list[tuple[AuditRecord, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(LOG).order_by(LOG.c.id)).all()
    fields = AuditRecord.__dataclass_fields__
    return [
        (AuditRecord(**{f: getattr(r, f) for f in fields}), r.prev_hash, r.row_hash) for r in rows
    ]


def test_links_are_macs_under_a_sealed_key(vault: Vault, engine: Engine, clock: FakeClock) -> None:
    _activity(vault, clock)
    key = vault._storage.chain.key  # the test reads it from the vault; the database cannot
    for record, prev, link in _records(engine):
        assert link == mac_link(key, record, prev)
        assert link != sha_link(record, prev)  # the old, keyless link no longer fits
    with engine.connect() as conn:
        blobs = [bytes(b) for b in conn.execute(select(OBJECTS.c.blob)).scalars()]
    assert blobs and all(key not in blob for blob in blobs)  # stored sealed only


def _legacy_chain(engine: Engine, n: int) -> str:
    """`n` rows linked the way the code before key providers linked them; the head's hash."""
    prev = GENESIS
    with engine.begin() as conn:
        for i in range(1, n + 1):
            record = AuditRecord(i, 1.5 * i, "t1", "old", "reveal", "c0", None, None, "p", "ok")
            link = sha_link(record, prev)
            conn.execute(insert(LOG).values(**record.__dict__, prev_hash=prev, row_hash=link))
            prev = link
        conn.execute(update(HEAD).values(last_id=n, last_hash=prev, mac_from=None))
    return prev


def test_a_sha256_chain_switches_to_macs_with_one_recorded_event(
    db_url: str, engine: Engine, make_vault: VaultFactory, master_key: bytes | KeyProvider
) -> None:
    last = _legacy_chain(engine, 5)
    vault = make_vault(db_url, master_key)
    vault.audit_refusal(actor="gw", action="reveal", reason="forbidden")
    records = _records(engine)
    assert [r.action for r, _, _ in records].count(FORMAT_ACTION) == 1
    fmt, prev, _ = records[5]
    assert (fmt.id, fmt.action, prev) == (6, FORMAT_ACTION, last)  # binds the last SHA hash
    with engine.connect() as conn:
        assert conn.execute(select(HEAD.c.mac_from)).scalar() == 6
    report = vault.verify_audit(full=True)
    assert (report.ok, report.rows) == (True, 7)
    make_vault(db_url, master_key)  # a second worker starting: no second event
    assert [r.action for r, _, _ in _records(engine)].count(FORMAT_ACTION) == 1

    # A writer rewriting the SHA-256 part (recomputing its links) breaks the first MAC.
    legacy = [r for r, _, _ in _records(engine)[:5]]
    legacy[1] = AuditRecord(**{**legacy[1].__dict__, "outcome": "refused"})
    with engine.begin() as conn:
        prev = GENESIS
        for record in legacy:
            link = sha_link(record, prev)
            values = {"outcome": record.outcome, "prev_hash": prev, "row_hash": link}
            conn.execute(update(LOG).where(LOG.c.id == record.id).values(**values))
            prev = link
    assert vault.verify_audit(full=True).first_bad == 6


def test_the_head_and_the_audit_key_must_agree(
    db_url: str,
    vault: Vault,
    engine: Engine,
    make_vault: VaultFactory,
    master_key: bytes | KeyProvider,
) -> None:
    vault.audit_refusal(actor="gw", action="reveal", reason="forbidden")
    with engine.begin() as conn:
        conn.execute(update(HEAD).values(mac_from=None))  # "this chain was never MAC-linked"
    with pytest.raises(AuditChainTampered):
        make_vault(db_url, master_key)
    with engine.begin() as conn:
        conn.execute(update(HEAD).values(mac_from=1))
        conn.execute(delete(OBJECTS).where(OBJECTS.c.name == "audit-mac/v1"))  # a new key, please
    with pytest.raises(AuditChainTampered):
        make_vault(db_url, master_key)


def test_verification_is_incremental_and_its_records_cannot_be_forged(
    vault: Vault, engine: Engine, clock: FakeClock
) -> None:
    assert vault.audit_status() is None
    _activity(vault, clock, reveals=10)
    first = vault.verify_audit()
    assert (first.ok, first.rows, first.checked) == (True, 10, 10)
    _activity(vault, clock, reveals=4)
    second = vault.verify_audit()
    assert (second.ok, second.rows, second.checked) == (True, 14, 4)  # from the last good one
    status = vault.audit_status()
    assert status is not None and (status.ok, status.rows) == (True, 14)

    # A writer inserts "verified up to 10 000, all fine": it has no audit key for the MAC.
    with engine.begin() as conn:
        fake = {"at": clock.now, "seq": 10_000, "head": "f" * 64, "checked": 1, "ok": True}
        conn.execute(insert(RESULTS).values(**fake, first_bad=None, mac="0" * 64))
    status = vault.audit_status()
    assert status is not None and status.forged and not status.ok  # what the viewer shows
    third = vault.verify_audit()
    assert (third.ok, third.rows, third.checked) == (True, 14, 0)  # the forgery is no anchor


def test_an_edit_behind_the_last_verification_is_found_by_a_full_walk(
    vault: Vault, engine: Engine, clock: FakeClock
) -> None:
    _activity(vault, clock, reveals=10)
    assert vault.verify_audit().ok
    with engine.begin() as conn:
        conn.execute(update(LOG).where(LOG.c.id == 4).values(outcome="refused"))
    assert vault.verify_audit().ok  # incremental: row 4 is behind the last verification
    full = vault.verify_audit(full=True)
    assert (full.ok, full.first_bad) == (False, 4)


def test_checkpoints_pin_the_head_against_truncation(
    vault: Vault, engine: Engine, clock: FakeClock
) -> None:
    _activity(vault, clock, reveals=10)
    line = vault.audit_checkpoint()
    public = vault.checkpoint_signer.public_key
    checkpoint = verify_checkpoint(line, public)
    assert checkpoint.seq == 10 and json.loads(line)["head"] == checkpoint.head
    assert vault.verify_audit(checkpoints=[checkpoint]).ok

    with engine.begin() as conn:  # truncate the tail and move the head back: it links
        link = conn.execute(select(LOG.c.row_hash).where(LOG.c.id == 7)).scalar_one()
        conn.execute(delete(LOG).where(LOG.c.id > 7))
        conn.execute(update(HEAD).values(last_id=7, last_hash=link))
        conn.execute(delete(RESULTS))
    assert vault.verify_audit(full=True).ok  # nothing inside the database says otherwise
    report = vault.verify_audit(checkpoints=[checkpoint])
    assert (report.ok, report.first_bad) == (False, 8)
    with pytest.raises(InvalidCheckpoint):  # against another key: refused, not trusted
        verify_checkpoint(line, _crypto.ed25519_public(b"\x01" * 32))
    forged = Checkpoint(checkpoint.seq, hashlib.sha256(b"x").hexdigest(), checkpoint.at)
    report = vault.verify_audit(checkpoints=[forged])  # (a caller's unchecked checkpoint)
    assert not report.ok
