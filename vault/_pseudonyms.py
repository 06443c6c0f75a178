"""Moving conversations stored under raw sender ids to their pseudonyms (issue 14, finding 7).

Why online: a conversation id is bound into the associated data of every wrapped data key
(`Keks.context`) and every sealed value (`value_aad`), so renaming a conversation means
unwrapping and re-sealing under the key provider, which an alembic migration does not
have (migration 0010 only marks the version; as for 0007, the key work runs when a vault
opens with its provider: the service's start-up, `compose`).

Per legacy id (a conversation id that is not a pseudonym, in the vault's `conversations`
or in the caller's own tables, `LegacyRows.legacy_ids`), ONE transaction: the id's epochs
are locked, each data key is re-wrapped under the same KEK and each value re-sealed bound
to (pseudonym, epoch) (epochs numbered after any the pseudonym already has), the rows are
renamed, and the caller renames its own rows (`LegacyRows.move`).  A crash leaves every
conversation either wholly old or wholly new; a rerun picks up the old ones.  Pre-provider
epochs are first moved to bucket KEKs (`Upkeep.move_legacy`).

Audit: ONE `migrate` event for the whole migration (purpose `pseudonyms:<how many were
pending>`, no id), appended in the first conversation's transaction, so no conversation
moves unaudited and a rerun after a crash does not add another.

Earlier audit rows were chained with the raw id (migration 0013, `AuditIds`): their links
and the operator's signed checkpoints cover it, so it cannot simply be rewritten.  Each
such row shows the pseudonym instead and keeps the raw id sealed beside it
(`audit_log.sealed_conversation`, `_chain.id_sealer`), which verification opens to
recompute the link (docs/keys.md, "Pseudonyms").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.engine import Connection

from coatcheck.vault._chain import Entry, id_sealer, sealed_id_aad
from coatcheck.vault._keks import Keks
from coatcheck.vault._keycache import EpochKeys, KeyCache, value_aad
from coatcheck.vault._retention import shred_epochs
from coatcheck.vault._statements import CONV, INSERT_VALUES, KNOWN, VAL
from coatcheck.vault._storage import Storage
from coatcheck.vault._subjects import PSEUDONYM_RE
from coatcheck.vault._tokens import new_ref
from coatcheck.vault._transaction import Transaction
from coatcheck.vault._upkeep import Upkeep
from coatcheck.vault.errors import DecryptionError
from coatcheck.vault.keys.errors import KeyDestroyed
from coatcheck.vault.models import AuditHead, AuditRow
from coatcheck.vault.outcomes import Outcome

__all__ = ["ACTION", "AuditIds", "LegacyRows", "PseudonymMigration"]

ACTION = "migrate"
_PURPOSE = "pseudonyms:"
_LOG = cast(Table, AuditRow.__table__)
_HEAD = cast(Table, AuditHead.__table__)


class LegacyRows(Protocol):
    """The caller's own rows keyed by conversation id (the gateway's history, state...)."""

    def legacy_ids(self, tx: Transaction) -> set[str]:
        """Conversation ids in the caller's rows that are not pseudonyms."""
        ...

    def move(self, tx: Transaction, old: str, new: str) -> int:
        """Rename `old` to `new` in the caller's rows, inside the vault's transaction; how
        many rows changed."""
        ...


def is_pseudonym(conversation_id: str) -> bool:
    return PSEUDONYM_RE.fullmatch(conversation_id) is not None


class PseudonymMigration:
    """The online step of migration 0010 over one `Storage`."""

    __slots__ = ("_keks", "_keys", "_pseudonym", "_storage", "_ttl", "_upkeep")

    def __init__(
        self,
        storage: Storage,
        keks: Keks,
        keys: KeyCache,
        upkeep: Upkeep,
        pseudonym: Callable[[str], str],
        ttl: Callable[[str], float | None],
    ) -> None:
        self._storage = storage
        self._keks = keks
        self._keys = keys
        self._upkeep = upkeep
        self._pseudonym = pseudonym
        self._ttl = ttl

    def pending(self, rows: LegacyRows | None) -> list[str]:
        """Every legacy conversation id, in the vault's table and the caller's rows."""
        storage = self._storage
        with storage.engine.begin() as conn:
            found = set(
                conn.execute(
                    select(CONV.c.conversation_id).where(CONV.c.tenant == storage.tenant).distinct()
                ).scalars()
            )
            if rows is not None:
                found |= rows.legacy_ids(Transaction(conn))
        return sorted(cid for cid in found if not is_pseudonym(cid))

    def run(self, actor: str, rows: LegacyRows | None, sender_type: str | None) -> int:
        """Move every legacy conversation to its pseudonym; how many moved in this run."""
        legacy = self.pending(rows)
        if not legacy:
            return 0
        self._upkeep.move_legacy(500)  # pre-provider epochs onto bucket KEKs first
        moved = 0
        for old in legacy:
            new = self._pseudonym(old)
            with self._storage.engine.begin() as conn:
                if self._move(conn, old, new, rows, sender_type):
                    moved += 1
                    self._audit_once(conn, actor, len(legacy))
            self._keys.forget(old)
            self._keys.forget(new)
        self._storage.unsettled = True  # old row versions hold the raw id: settle the WAL
        return moved

    def _move(
        self,
        conn: Connection,
        old: str,
        new: str,
        rows: LegacyRows | None,
        sender_type: str | None,
    ) -> bool:
        """Rename one conversation in the vault and the caller's rows; whether any moved
        (nothing does when another worker moved it first)."""
        tenant = self._storage.tenant
        epochs = conn.execute(
            select(CONV)
            .where(CONV.c.tenant == tenant, CONV.c.conversation_id == old)
            .order_by(CONV.c.epoch)
            .with_for_update()
        ).all()
        after = conn.execute(
            select(func.max(CONV.c.epoch)).where(
                CONV.c.tenant == tenant, CONV.c.conversation_id == new
            )
        ).scalar()
        offset = int(after or 0)
        keys: EpochKeys | None = None
        for epoch in epochs:
            keys = self._move_epoch(conn, epoch, old, (new, epoch.epoch + offset))
        last = epochs[-1] if epochs else None
        if sender_type and last is not None and keys is not None and last.ended_at is None:
            self._vault_sender(conn, (last.id, last.epoch + offset), keys, (old, new), sender_type)
        changed = rows.move(Transaction(conn), old, new) if rows is not None else 0
        return bool(epochs) or changed > 0

    def _move_epoch(
        self, conn: Connection, epoch: Any, old: str, to: tuple[str, int]
    ) -> EpochKeys | None:
        """Re-wrap the data key and re-seal every value of one epoch bound to `to`; its keys
        (None: shredded)."""
        wrapped = epoch.wrapped_dek
        keys = None
        if wrapped is not None:
            try:
                dek, wrapped = self._keks.rebind(conn, epoch, old, to)
            except KeyDestroyed:  # its KEK is gone (a restored backup): it is shredded
                shred_epochs(conn, [epoch.id], self._storage.clock())
                self._storage.unsettled = True
                wrapped = None
            else:
                keys = EpochKeys(dek)
                self._reseal(conn, epoch, keys, old, to)
        conn.execute(
            update(CONV)
            .where(CONV.c.id == epoch.id)
            .values(conversation_id=to[0], epoch=to[1], wrapped_dek=wrapped)
        )
        return keys

    def _vault_sender(
        self,
        conn: Connection,
        epoch: tuple[int, int],
        keys: EpochKeys,
        ids: tuple[str, str],
        sender_type: str,
    ) -> None:
        """The raw id as the live epoch's `sender_type` value, as the channel's live path
        vaults it with every message (deduplicated by its blind index)."""
        (pk, number), (old, new) = epoch, ids
        index = keys.blind_index(sender_type, old)
        if conn.execute(KNOWN, {"pk": pk, "indexes": [index]}).first() is not None:
            return
        storage = self._storage
        ref, now = new_ref(), storage.clock()
        lifetime = self._ttl(sender_type)
        aad = value_aad(storage.tenant, new, number, ref, sender_type)
        row = {
            "conversation_pk": pk,
            "ref": ref,
            "entity_type": sender_type,
            "blind_index": index,
            "ciphertext": keys.sealer.seal(old.encode("utf-8"), aad),
            "created_at": now,
            "expires_at": None if lifetime is None else now + lifetime,
        }
        conn.execute(INSERT_VALUES, [row])

    def _reseal(
        self, conn: Connection, epoch: Any, keys: EpochKeys, old: str, to: tuple[str, int]
    ) -> None:
        tenant = self._storage.tenant
        values = conn.execute(
            select(VAL.c.id, VAL.c.ref, VAL.c.entity_type, VAL.c.ciphertext).where(
                VAL.c.conversation_pk == epoch.id, VAL.c.ciphertext.is_not(None)
            )
        ).all()
        for value in values:
            was = value_aad(tenant, old, epoch.epoch, value.ref, value.entity_type)
            try:
                plain = keys.sealer.open(value.ciphertext, was)
            except DecryptionError:
                continue  # unreadable before the move too: left as it is, never a stuck start
            now = value_aad(tenant, to[0], to[1], value.ref, value.entity_type)
            conn.execute(
                update(VAL)
                .where(VAL.c.id == value.id)
                .values(ciphertext=keys.sealer.seal(plain, now))
            )

    def _audit_once(self, conn: Connection, actor: str, pending: int) -> None:
        """The migration's one event, unless a run before (or another worker) wrote it.

        The head is locked first, so two workers starting at once do not both append; it
        is still the transaction's last lock (every epoch row was locked before)."""
        storage = self._storage
        conn.execute(select(_HEAD.c.last_id).where(_HEAD.c.id == 1).with_for_update())
        found = conn.execute(
            select(_LOG.c.id)
            .where(
                _LOG.c.tenant == storage.tenant,
                _LOG.c.action == ACTION,
                _LOG.c.purpose.like(_PURPOSE + "%"),
            )
            .limit(1)
        ).first()
        if found is not None:
            return
        entry = Entry(
            storage.clock(),
            storage.tenant,
            actor,
            ACTION,
            Outcome.OK.audit_text(),
            purpose=f"{_PURPOSE}{pending}",
        )
        storage.chain.append(conn, [entry])


_AUDIT_PURPOSE = "audit-ids:"
_AUDIT_CHUNK = 5_000  # rows per transaction (no index on conversation_id: walk by id)
_UNSEALED = (
    select(_LOG.c.id, _LOG.c.conversation_id)
    .where(
        _LOG.c.tenant == bindparam("t"),
        _LOG.c.id > bindparam("after"),
        _LOG.c.conversation_id.is_not(None),
        _LOG.c.sealed_conversation.is_(None),
    )
    .order_by(_LOG.c.id)
    .limit(_AUDIT_CHUNK)
)
_SEAL_ROW = (
    update(_LOG)
    .where(_LOG.c.id == bindparam("row"), _LOG.c.sealed_conversation.is_(None))
    .values(conversation_id=bindparam("new"), sealed_conversation=bindparam("sealed"))
)


class AuditIds:
    """The online step of migration 0013: audit rows chained with a raw conversation id
    show its pseudonym, the raw id sealed beside them (the link is left as it was).

    One `migrate` event (purpose `audit-ids:<ids pending when it began>`) per run that
    seals anything, in the first transaction that does: no row changes what it shows
    unaudited.  Rows are walked by id, `_AUDIT_CHUNK` per transaction (the column has no
    index: a statement per id would scan the table once per id).  Idempotent: sealed rows
    are skipped, a rerun with nothing left writes nothing; two workers at once both update
    only rows still unsealed.
    """

    __slots__ = ("_pseudonym", "_storage")

    def __init__(self, storage: Storage, pseudonym: Callable[[str], str]) -> None:
        self._storage = storage
        self._pseudonym = pseudonym

    def pending(self) -> set[str]:
        """Raw ids in audit rows not sealed yet (every id a row shows that is no pseudonym)."""
        storage = self._storage
        query = (
            select(_LOG.c.conversation_id)
            .where(
                _LOG.c.tenant == storage.tenant,
                _LOG.c.conversation_id.is_not(None),
                _LOG.c.sealed_conversation.is_(None),
            )
            .distinct()
        )
        with storage.engine.begin() as conn:
            found = conn.execute(query).scalars().all()
        return {cid for cid in found if not is_pseudonym(cid)}

    def run(self, actor: str) -> int:
        """Seal every legacy id in the audit rows; how many rows now show a pseudonym."""
        legacy = self.pending()
        if not legacy:
            return 0
        storage = self._storage
        sealer = id_sealer(storage.chain.key)
        shown: dict[str, tuple[str, bytes]] = {}  # raw id -> (pseudonym, sealed raw id)
        total, after, more = 0, 0, True
        while more:
            with storage.engine.begin() as conn:
                rows = conn.execute(_UNSEALED, {"t": storage.tenant, "after": after}).all()
                more, after = len(rows) == _AUDIT_CHUNK, rows[-1].id if rows else after
                params = []
                for row in rows:
                    raw = row.conversation_id
                    if raw in legacy:
                        if raw not in shown:
                            new = self._pseudonym(raw)
                            shown[raw] = (new, sealer.seal(raw.encode(), sealed_id_aad(new)))
                        params.append(
                            {"row": row.id, "new": shown[raw][0], "sealed": shown[raw][1]}
                        )
                sealed = max(conn.execute(_SEAL_ROW, params).rowcount, 0) if params else 0
                if sealed and not total:
                    self._audit(conn, actor, len(legacy))
                total += sealed
        storage.unsettled = True  # the rows' old versions hold the raw id: settle the WAL
        return total

    def _audit(self, conn: Connection, actor: str, pending: int) -> None:
        """The run's one event, in the transaction of its first sealed rows."""
        storage = self._storage
        purpose = f"{_AUDIT_PURPOSE}{pending}"
        entry = Entry(
            storage.clock(), storage.tenant, actor, ACTION, Outcome.OK.audit_text(), purpose=purpose
        )
        storage.chain.append(conn, [entry])
