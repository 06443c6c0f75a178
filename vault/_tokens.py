"""The write side: tokenize (deduplicated by blind index) and temporary references.

Concurrency: uniqueness lives in the database ((conversation, type, blind index),
(conversation, ref), (tenant, conversation, epoch)); a writer that loses a race gets an
IntegrityError, rolls back and retries the whole transaction, then sees the winner's row.

Speed (issue 9): a worker remembers each conversation's live epoch (row id + wrapped DEK)
after its creating transaction commits; tokenize then inserts with `ON CONFLICT DO
NOTHING RETURNING`, guarded in the same transaction by "that epoch still has that wrapped
DEK" (FOR SHARE on PostgreSQL, so a concurrent shred waits or wins), and falls back to the
locking path on any surprise.  The remembered epoch is only a hint: it is checked in SQL
on every call, never trusted.

Key epochs: a conversation whose latest epoch was shredded or ended gets a new epoch
(new data key, new references) on its next value; the old references keep answering as
they ended.  A new epoch's data key is wrapped under the current `live` bucket KEK
(`_keks.py`), fetched (or made) before the transaction opens; if that KEK was retired
meanwhile the transaction is run again with the new one.  A live epoch whose KEK was
destroyed (a database restored from before a shred) is shredded and replaced.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from coatcheck.vault import _crypto
from coatcheck.vault._arguments import check_conversation, check_type, require
from coatcheck.vault._chain import Entry
from coatcheck.vault._keks import LIVE, BucketKek, KekRetired, Keks
from coatcheck.vault._keycache import EpochKeys, Hint, IndexKey, KeyCache, value_aad
from coatcheck.vault._retention import shred_epochs
from coatcheck.vault._statements import CONV, INSERT_VALUES, KNOWN, LIVE_COLS, ROW_BY_ROW_PG
from coatcheck.vault._storage import Storage
from coatcheck.vault._transaction import Transaction
from coatcheck.vault.errors import ConcurrencyError
from coatcheck.vault.keys.errors import KeyDestroyed
from coatcheck.vault.lifecycle import TEMPORARY, Policies
from coatcheck.vault.outcomes import Outcome

__all__ = ["Then", "Tokenizer", "new_ref"]

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_REF_LEN = 10

# The caller's rows for the same transaction (see Tokenizer.tokenize_many).
Then = Callable[[Transaction, list[str]], None]
_T = TypeVar("_T")


class _Stale(Exception):
    """Internal: the cached conversation epoch is gone (shred, re-wrap); take the slow path."""


def new_ref() -> str:
    """10 random Crockford base32 characters (50 bits) from one CSPRNG read."""
    bits = secrets.randbits(5 * _REF_LEN)
    return "".join(_CROCKFORD[(bits >> (5 * i)) & 31] for i in range(_REF_LEN))


def _then(conn: Connection, refs: list[str], then: Then | None) -> None:
    """Run the caller's `then` hook in the tokenize transaction."""
    if then is not None:
        then(Transaction(conn), refs)


_Row = tuple[str, bool]  # a stored value's ref, and whether it never expires on its own


def _rows_stored(rows: Iterable[dict[str, Any]]) -> dict[IndexKey, _Row]:
    return {(r["entity_type"], r["blind_index"]): (r["ref"], r["expires_at"] is None) for r in rows}


@dataclass(frozen=True, slots=True)
class _Stored:
    """What one tokenize transaction stored or found, by blind index, under `keys`."""

    index_keys: list[IndexKey]
    by_key: dict[IndexKey, _Row]
    keys: EpochKeys

    def refs(self) -> list[str]:
        """The items' refs, in order."""
        return [self.by_key[key][0] for key in self.index_keys]

    def committed(self) -> list[str]:
        """After the commit: the epoch's keys remember the refs of lasting values."""
        self.keys.learn({key: ref for key, (ref, lasting) in self.by_key.items() if lasting})
        return self.refs()


def _under(
    work: Callable[[Connection, BucketKek], _T], under: BucketKek
) -> Callable[[Connection], _T]:
    return lambda conn: work(conn, under)


class Tokenizer:
    """tokenize_many and tokenize_temporary over one `Storage`."""

    __slots__ = ("_keks", "_keys", "_policies", "_storage")

    def __init__(self, storage: Storage, keks: Keks, keys: KeyCache, policies: Policies) -> None:
        self._storage = storage
        self._keks = keks
        self._keys = keys
        self._policies = policies

    def _live_epoch(self, conn: Connection, conversation_id: str, under: BucketKek) -> Any:
        """The conversation's current epoch, creating it (or a new epoch after an end)."""
        storage = self._storage
        latest = conn.execute(
            storage.sql.latest, {"tenant": storage.tenant, "cid": conversation_id}
        ).first()
        if latest is not None and latest.wrapped_dek is not None and latest.ended_at is None:
            return latest
        epoch = (latest.epoch if latest is not None else 0) + 1
        wrapped = self._keks.wrap(conn, under, _crypto.new_key(), conversation_id, epoch)
        return conn.execute(
            CONV.insert()
            .values(
                tenant=storage.tenant,
                conversation_id=conversation_id,
                epoch=epoch,
                kek_id=under.kek_id,
                kek_version=0,
                wrapped_dek=wrapped,
                created_at=storage.clock(),
            )
            .returning(*LIVE_COLS)
        ).one()

    def _open_live(self, conn: Connection, conversation_id: str, under: BucketKek) -> Any:
        """(epoch, keys) of the live epoch; one whose KEK is gone is shredded and replaced."""
        epoch = self._live_epoch(conn, conversation_id, under)
        try:
            return epoch, self._keys.open(conn, epoch, conversation_id)
        except KeyDestroyed:
            storage = self._storage
            now = storage.clock()
            shred_epochs(conn, [epoch.id], now)
            text = Outcome.OK.audit_text()
            entry = Entry(
                now,
                storage.tenant,
                "vault",
                "shred",
                text,
                conversation_id,
                purpose="kek_destroyed",
            )
            storage.chain.append(conn, [entry])
            epoch = self._live_epoch(conn, conversation_id, under)
            return epoch, self._keys.open(conn, epoch, conversation_id)

    def _wrapping(self, work: Callable[[Connection, BucketKek], _T]) -> _T:
        """Run `work` with the current live KEK; again with a new one if it was retired."""
        for _ in range(self._storage.retries):
            under = self._keks.current(LIVE, self._storage.clock())
            try:
                return self._storage.retry("tokenize", _under(work, under))
            except KekRetired:
                continue
        raise ConcurrencyError("tokenize")

    def _new_rows(
        self,
        keys: EpochKeys,
        conversation_id: str,
        epoch: tuple[int, int],
        items: Sequence[tuple[str, str]],
        index_keys: Sequence[IndexKey],
        skip: Mapping[IndexKey, object],
    ) -> list[dict[str, Any]]:
        """Sealed rows with fresh refs for the `items` whose blind index is not in `skip`."""
        pk, number = epoch
        tenant = self._storage.tenant
        rows: list[dict[str, Any]] = []
        now = self._storage.clock()
        ttl = self._policies.ttl
        fresh: set[IndexKey] = set()
        for (entity_type, value), key in zip(items, index_keys, strict=True):
            if key in skip or key in fresh:
                continue
            fresh.add(key)
            ref = new_ref()
            lifetime = ttl.get(entity_type)
            sealed = keys.sealer.seal(
                value.encode("utf-8"), value_aad(tenant, conversation_id, number, ref, entity_type)
            )
            rows.append(
                {
                    "conversation_pk": pk,
                    "ref": ref,
                    "entity_type": entity_type,
                    "blind_index": key[1],
                    "ciphertext": sealed,
                    "created_at": now,
                    "expires_at": None if lifetime is None else now + lifetime,
                }
            )
        return rows

    @staticmethod
    def _known(conn: Connection, pk: int, index_keys: Iterable[IndexKey]) -> dict[IndexKey, _Row]:
        """The stored values among `index_keys`: (ref, whether it never expires)."""
        indexes = sorted({index for _, index in index_keys})
        if not indexes:
            return {}
        return {
            (row.entity_type, row.blind_index): (row.ref, row.expires_at is None)
            for row in conn.execute(KNOWN, {"pk": pk, "indexes": indexes})
        }

    def _slow_tx(
        self,
        conn: Connection,
        conversation_id: str,
        items: Sequence[tuple[str, str]],
        under: BucketKek,
    ) -> tuple[_Stored, Any]:
        """(Create and) lock the live epoch, look up known values, insert new ones."""
        epoch, keys = self._open_live(conn, conversation_id, under)
        index_keys = [(t, keys.blind_index(t, v)) for t, v in items]
        known = self._known(conn, epoch.id, index_keys)
        rows = self._new_rows(
            keys, conversation_id, (epoch.id, epoch.epoch), items, index_keys, known
        )
        if rows:
            conn.execute(INSERT_VALUES, rows)
            known.update(_rows_stored(rows))
        return _Stored(index_keys, known, keys), epoch

    def _fast_tx(
        self,
        conn: Connection,
        conversation_id: str,
        hint: Hint,
        keys: EpochKeys,
        items: Sequence[tuple[str, str]],
    ) -> _Stored:
        """Cached epoch: check it is still live (and lock it on PG), then insert-or-ignore
        what the epoch's keys do not remember storing."""
        sql = self._storage.sql
        assert sql.insert_new is not None
        assert sql.insert_one is not None
        pk, number, wrapped = hint
        index_keys = [(t, keys.blind_index(t, v)) for t, v in items]
        stored: dict[IndexKey, _Row] = {
            k: (ref, True) for k, ref in keys.recall(index_keys).items()
        }
        rows = self._new_rows(keys, conversation_id, (pk, number), items, index_keys, stored)
        live = {"pk": pk, "wrapped": wrapped}
        row_by_row = not self._storage.pg or len(rows) <= ROW_BY_ROW_PG
        # Remembered refs hold only while the epoch is live: checked here when no INSERT
        # below carries the check.
        if (not rows or not row_by_row) and conn.execute(sql.still_live, live).first() is None:
            raise _Stale()
        if not rows:
            return _Stored(index_keys, stored, keys)
        if row_by_row:
            # Row by row on the driver: each INSERT carries its own liveness check.  Nothing
            # inserted means a known value, or the epoch is gone (shred nulls the blind
            # indexes, so the lookup below finds nothing and we take the slow path).
            inserted = set()
            for row in rows:
                inserted.update(sql.insert_one.scalars(conn, {**row, **live}))
        else:
            inserted = set(conn.execute(sql.insert_new, rows).scalars())
        fresh = _rows_stored(rows)
        lost = [key for key, (ref, _) in fresh.items() if ref not in inserted]
        if lost:
            # Another call stored these values first (or, rarely, a fresh ref collided).
            known = self._known(conn, pk, lost)
            if any(key not in known for key in lost):
                raise _Stale()
            fresh.update(known)
        stored.update(fresh)
        return _Stored(index_keys, stored, keys)

    def tokenize_many(
        self, conversation_id: str, items: Iterable[tuple[str, str]], then: Then | None
    ) -> list[str]:
        """All values in ONE transaction; `then(tx, refs)` last in it (see Vault)."""
        check_conversation(conversation_id)
        batch = list(items)
        for entity_type, value in batch:
            check_type(entity_type)
            require("value", isinstance(value, str))
        if not batch:
            return []
        storage = self._storage
        cached = self._keys.hint(conversation_id) if storage.sql.insert_new is not None else None
        if cached is not None:
            hint, keys = cached

            def fast(conn: Connection) -> _Stored:
                stored = self._fast_tx(conn, conversation_id, hint, keys, batch)
                _then(conn, stored.refs(), then)
                return stored

            try:
                return storage.retry("tokenize", fast).committed()
            except _Stale:
                self._keys.forget(conversation_id)

        def slow(conn: Connection, under: BucketKek) -> tuple[_Stored, Any]:
            stored, epoch = self._slow_tx(conn, conversation_id, batch, under)
            _then(conn, stored.refs(), then)
            return stored, epoch

        stored, epoch = self._wrapping(slow)
        self._keys.remember(conversation_id, epoch)
        return stored.committed()

    def tokenize_temporary(
        self, conversation_id: str, entity_type: str, value: str, ttl_seconds: float | None
    ) -> tuple[str, float | None]:
        check_conversation(conversation_id)
        check_type(entity_type)
        require("value", isinstance(value, str))
        if ttl_seconds is not None:
            number = isinstance(ttl_seconds, int | float) and not isinstance(ttl_seconds, bool)
            require("ttl_seconds", number and ttl_seconds > 0)
        limits = [t for t in (ttl_seconds, self._policies.ttl_for(entity_type)) if t is not None]
        storage = self._storage

        def work(conn: Connection, under: BucketKek) -> tuple[str, float | None, Any]:
            epoch, keys = self._open_live(conn, conversation_id, under)
            now = storage.clock()
            expires = now + min(limits) if limits else None
            ref = new_ref()
            aad = value_aad(storage.tenant, conversation_id, epoch.epoch, ref, entity_type)
            row = {
                "conversation_pk": epoch.id,
                "ref": ref,
                "entity_type": entity_type,
                "blind_index": None,
                "ciphertext": keys.sealer.seal(value.encode("utf-8"), aad),
                "created_at": now,
                "expires_at": expires,
                "status": TEMPORARY,
            }
            conn.execute(INSERT_VALUES, [row])
            return ref, expires, epoch

        ref, expires, epoch = self._wrapping(work)
        self._keys.remember(conversation_id, epoch)
        return ref, expires
