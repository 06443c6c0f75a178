"""Migration 0010 and its online step: conversations stored under raw sender ids move to
their pseudonyms (issue 14, finding 7: "existing databases are migrated").

The database is built the way the code before pseudonyms wrote it: values vaulted under
the raw id (their data keys and ciphertexts bind it), history, state and rate rows keyed
by it.  After `Vault.migrate_pseudonyms(GatewayRows(), ...)` (what every worker runs at start),
no raw id is left in the gateway's tables or the vault's conversations (nor in the SQLite
file's bytes), every value still reveals under the pseudonym with its old reference, the
audit chain verifies with ONE `migrate` event, a rerun changes nothing, and a crash inside
one conversation's transaction leaves it wholly old, for the rerun to finish.  Audit rows
chained with a raw id show the pseudonym afterwards, the raw id sealed beside them
(migration 0013): the chain and a checkpoint signed before the move still verify, and a
row edited to show another conversation fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, insert, select, text, update

from coatcheck.middleware.gateway.pseudonyms import GatewayRows
from coatcheck.middleware.models import ConversationState, HistoryEntry, RateCounter
from coatcheck.vault import (
    PSEUDONYM_RE,
    Transaction,
    UnknownReference,
    Vault,
    make_engine,
    upgrade,
)
from coatcheck.vault._statements import CONV
from coatcheck.vault.db import ALEMBIC_DIR, sqlite_path
from coatcheck.vault.keys import verify_checkpoint
from coatcheck.vault.models import AuditRow
from tests.conftest import FakeClock

MASTER = bytes(range(32))
PHONE = "+14155550123"  # no audited action under it: not even the audit log names it
EMAIL = "alice@example.com"  # revealed (audited) before the migration
SHREDDED = "u-shredded-7"  # a conversation shredded before the migration
GATEWAY_ONLY = "u-history-only"  # history and state, nothing vaulted
LEGACY = (PHONE, EMAIL, SHREDDED, GATEWAY_ONLY)
SENDER_ID = "SENDER_ID"


def _allow(_state: Any) -> None:
    return None


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def _vault(engine: Engine) -> Vault:
    return Vault(engine, MASTER, tenant="t1", clock=FakeClock())


def _gateway_rows(engine: Engine, cid: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(HistoryEntry.__table__),
            [
                {"conversation_id": cid, "direction": "in", "text": "hi", "created_at": 1.0},
                {"conversation_id": cid, "direction": "out", "text": "ok", "created_at": 2.0},
            ],
        )
        conn.execute(
            insert(ConversationState.__table__).values(
                conversation_id=cid, updated_at=1.0, status="active", started_at=1.0,
                last_activity=1.0,
            )
        )  # fmt: skip
        conn.execute(insert(RateCounter.__table__).values(sender=cid, window_start=0, count=3))


def _build_old(engine: Engine) -> dict[tuple[str, str], str]:
    """The pre-pseudonym database: {(raw id, ref): value} of every value still held."""
    vault = _vault(engine)
    held: dict[tuple[str, str], str] = {}
    for cid, items in (
        (PHONE, [("PHONE_NUMBER", PHONE), ("EMAIL_ADDRESS", "p@example.org")]),
        (EMAIL, [("EMAIL_ADDRESS", EMAIL), ("CREDIT_CARD", "4111111111111111")]),
    ):
        refs = vault.tokenize_many(cid, items)
        held.update({(cid, ref): value for ref, (_, value) in zip(refs, items, strict=True)})
    vault.end(EMAIL, "test", "closed")  # epoch 1 ends (masked or shredded by policy)
    held = {k: v for k, v in held.items() if k[0] != EMAIL}
    ref = vault.tokenize(EMAIL, "PERSON", "Alice Liddell")  # epoch 2, live
    held[(EMAIL, ref)] = "Alice Liddell"
    assert vault.reveal_for(EMAIL, ref, actor="t", purpose="p", policy=_allow) == "Alice Liddell"
    vault.tokenize(SHREDDED, "PERSON", "Bob")
    vault.shred(SHREDDED, "test")
    for cid in LEGACY:
        _gateway_rows(engine, cid)
    return held


def _ids(engine: Engine) -> set[str]:
    """Every conversation id in the gateway's tables and the vault's conversations."""
    with engine.connect() as conn:
        found = set(conn.execute(select(CONV.c.conversation_id)).scalars())
        for table, column in (
            ("gw_history", "conversation_id"),
            ("gw_conversation_state", "conversation_id"),
            ("gw_rate_counters", "sender"),
        ):
            found |= set(conn.execute(text(f"SELECT {column} FROM {table}")).scalars())
    return found


def _snapshot(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return [
            conn.execute(text(f"SELECT * FROM {t} ORDER BY 1")).all()
            for t in ("conversations", "stored_values", "gw_history", "gw_conversation_state",
                      "gw_rate_counters", "audit_log")
        ]  # fmt: skip


def _migrations(vault: Vault, purpose: str = "pseudonyms:") -> list[Any]:
    return [r for r in vault.audit_rows(action="migrate") if r.purpose.startswith(purpose)]


def test_an_old_database_moves_to_pseudonyms(engine: Engine, db_url: str) -> None:
    held = _build_old(engine)
    assert set(LEGACY) <= _ids(engine)
    vault = _vault(engine)  # a restart on the new version
    assert vault.migrate_pseudonyms(GatewayRows(), sender_type=SENDER_ID) == len(LEGACY)

    ids = _ids(engine)
    assert ids and all(PSEUDONYM_RE.fullmatch(cid) for cid in ids), ids
    assert {vault.pseudonym(cid) for cid in LEGACY} - {vault.pseudonym(SHREDDED)} <= ids
    with engine.connect() as conn:  # history lines and state moved, rate counters dropped
        lines = conn.execute(
            text("SELECT count(*) FROM gw_history WHERE conversation_id = :c"),
            {"c": vault.pseudonym(GATEWAY_ONLY)},
        ).scalar_one()
        rates = conn.execute(text("SELECT count(*) FROM gw_rate_counters")).scalar_one()
    assert (lines, rates) == (2, 0)
    for (cid, ref), value in held.items():  # same reference, now under the pseudonym
        got = vault.reveal_for(vault.pseudonym(cid), ref, actor="t", purpose="p", policy=_allow)
        assert got == value
        with pytest.raises(UnknownReference):
            vault.lookup(cid, ref)
    assert vault.holdings(vault.pseudonym(SHREDDED)).epochs == 1
    # the raw id is vaulted as SENDER_ID where the conversation is still live, as the live
    # path does with every message; a shredded or history-only one gets nothing
    senders = {
        cid: [v.value for v in vault.subject_export(cid, "t") if v.entity_type == SENDER_ID]
        for cid in LEGACY
    }
    assert senders == {PHONE: [PHONE], EMAIL: [EMAIL], SHREDDED: [], GATEWAY_ONLY: []}

    report = vault.verify_audit(full=True)
    assert report.ok and report.first_bad is None
    (event,) = _migrations(vault)
    assert (event.purpose, event.conversation_id, event.outcome) == ("pseudonyms:4", None, "ok")
    # Audit rows chained with a raw id show its pseudonym (0013), the raw id sealed beside
    # them; the chain verifies above, with their links as they were.
    assert vault.audit_rows(conversation_id=EMAIL) == []
    shown = {r.action for r in vault.audit_rows(conversation_id=vault.pseudonym(EMAIL))}
    assert {"end", "reveal"} <= shown
    (sealing,) = _migrations(vault, "audit-ids:")
    assert (sealing.purpose, sealing.conversation_id) == ("audit-ids:2", None)  # EMAIL, SHREDDED

    path = sqlite_path(db_url)
    if path is not None:
        engine.dispose()
        raw = b"".join(p.read_bytes() for p in Path(path).parent.glob(Path(path).name + "*"))
        for cid in LEGACY:  # the audited ones too (EMAIL, SHREDDED): no raw id in any byte
            assert cid.encode() not in raw, cid


def test_sealed_audit_ids_keep_checkpoints_and_catch_edits(engine: Engine) -> None:
    """A checkpoint signed before the move still verifies after it; a sealed row edited to
    show another conversation, or given another row's sealed id, fails at that row."""
    _build_old(engine)
    vault = _vault(engine)
    checkpoint = verify_checkpoint(vault.audit_checkpoint(), vault.checkpoint_signer.public_key)
    vault.migrate_pseudonyms(GatewayRows(), sender_type=SENDER_ID)
    assert vault.verify_audit(checkpoints=[checkpoint]).ok
    log = AuditRow.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(log.c.id, log.c.conversation_id, log.c.sealed_conversation)
            .where(log.c.sealed_conversation.is_not(None))
            .order_by(log.c.id)
        ).all()
    email = [r for r in rows if r.conversation_id == vault.pseudonym(EMAIL)]
    other = next(r for r in rows if r.conversation_id == vault.pseudonym(SHREDDED))
    edits = [
        {"conversation_id": vault.pseudonym(SHREDDED)},  # shows another conversation
        {"sealed_conversation": other.sealed_conversation},  # another row's sealed id
        {"sealed_conversation": None},  # unsealed: the pseudonym is not what was chained
    ]
    target = email[0]
    for edit in edits:
        with engine.begin() as conn:
            conn.execute(update(log).where(log.c.id == target.id).values(**edit))
        report = vault.verify_audit(full=True)
        assert (report.ok, report.first_bad) == (False, target.id), edit
        with engine.begin() as conn:
            conn.execute(
                update(log)
                .where(log.c.id == target.id)
                .values(
                    conversation_id=target.conversation_id,
                    sealed_conversation=target.sealed_conversation,
                )
            )
    assert vault.verify_audit(full=True).ok


def test_a_second_run_changes_nothing(engine: Engine) -> None:
    _build_old(engine)
    vault = _vault(engine)
    assert vault.migrate_pseudonyms(GatewayRows(), sender_type=SENDER_ID) == len(LEGACY)
    before = _snapshot(engine)
    again = _vault(engine)
    assert again.migrate_pseudonyms(GatewayRows(), sender_type=SENDER_ID) == 0
    assert _snapshot(engine) == before
    assert len(_migrations(again)) == 1


class _Crash(Exception):
    pass


class _CrashingRows(GatewayRows):
    """The gateway's rows, failing inside the transaction of the `after`-th conversation."""

    def __init__(self, after: int) -> None:
        self.left = after

    def move(self, tx: Transaction, old: str, new: str) -> int:
        changed = super().move(tx, old, new)
        self.left -= 1
        if self.left < 0:
            raise _Crash()
        return changed


@pytest.mark.parametrize("after", [0, 2])  # in the first conversation; in the third
def test_a_crash_mid_way_leaves_it_consistent_and_a_rerun_finishes(
    engine: Engine, after: int
) -> None:
    held = _build_old(engine)
    vault = _vault(engine)
    with pytest.raises(_Crash):
        vault.migrate_pseudonyms(_CrashingRows(after), sender_type=SENDER_ID)
    ids = _ids(engine)
    old = sorted(cid for cid in ids if not PSEUDONYM_RE.fullmatch(cid))
    assert len(old) == len(LEGACY) - after  # the crashed conversation is wholly old
    for cid in old:  # still all there under the old id, values open
        for (owner, ref), value in held.items():
            if owner == cid:
                assert vault.reveal_for(cid, ref, actor="t", purpose="p", policy=_allow) == value
    assert len(_migrations(vault)) == (1 if after else 0)  # audited with the first move
    assert vault.verify_audit(full=True).ok

    rerun = _vault(engine)
    assert rerun.migrate_pseudonyms(GatewayRows(), sender_type=SENDER_ID) == len(LEGACY) - after
    assert all(PSEUDONYM_RE.fullmatch(cid) for cid in _ids(engine))
    for (cid, ref), value in held.items():
        got = rerun.reveal_for(rerun.pseudonym(cid), ref, actor="t", purpose="p", policy=_allow)
        assert got == value
    (event,) = _migrations(rerun)
    assert event.purpose == f"pseudonyms:{len(LEGACY)}"  # what was pending at the start
    assert rerun.verify_audit(full=True).ok


@pytest.mark.parametrize("cid", ["p_" + "a" * 25, "P_" + "A" * 26, "p_" + "1" * 26, "u1"])
def test_near_pseudonyms_count_as_raw(engine: Engine, cid: str) -> None:
    _gateway_rows(engine, cid)
    vault = _vault(engine)
    assert vault.migrate_pseudonyms(GatewayRows(), sender_type=SENDER_ID) == 1
    assert _ids(engine) == {vault.pseudonym(cid)}


def test_a_pseudonymous_or_empty_database_has_nothing_to_move(engine: Engine) -> None:
    vault = _vault(engine)
    assert vault.migrate_pseudonyms(GatewayRows(), sender_type=SENDER_ID) == 0  # empty
    _gateway_rows(engine, vault.pseudonym(PHONE))  # the new edge's rows ("no match" row)
    vault.tokenize(vault.pseudonym(PHONE), "PHONE_NUMBER", PHONE)
    before = _snapshot(engine)
    assert vault.migrate_pseudonyms(GatewayRows(), sender_type=SENDER_ID) == 0
    assert _snapshot(engine) == before and _migrations(vault) == []


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    return str(ScriptDirectory.from_config(config).get_current_head())


def test_0010_upgrades_an_old_database_without_refusing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0007")
    engine = make_engine(url)
    _gateway_rows(engine, PHONE)
    upgrade(engine)  # formerly refused; now a marker, the move runs online
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == _head() and PHONE in _ids(engine)  # every migration ran, 0010 too
    engine.dispose()


def test_two_workers_starting_at_once_move_each_conversation_once(db_url: str) -> None:
    engines = [make_engine(db_url) for _ in range(2)]
    try:
        ids = [f"+1415555{i:04d}" for i in range(12)]
        first = _vault(engines[0])
        held = {cid: first.tokenize(cid, "PHONE_NUMBER", cid) for cid in ids}
        for cid in ids:
            _gateway_rows(engines[0], cid)
        vaults = [_vault(engine) for engine in engines]
        with ThreadPoolExecutor(2) as pool:
            moved = list(
                pool.map(
                    lambda v: v.migrate_pseudonyms(GatewayRows(), sender_type=SENDER_ID), vaults
                )
            )
        assert sum(moved) == len(ids), moved  # each conversation moved by exactly one worker
        assert all(PSEUDONYM_RE.fullmatch(cid) for cid in _ids(engines[0]))
        for cid, ref in held.items():
            got = first.reveal_for(first.pseudonym(cid), ref, actor="t", purpose="p", policy=_allow)
            assert got == cid
        (event,) = _migrations(first)
        assert event.purpose == f"pseudonyms:{len(ids)}"
        assert first.verify_audit(full=True).ok
    finally:
        for engine in engines:
            engine.dispose()
