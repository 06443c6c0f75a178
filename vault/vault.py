"""The vault: tokenize, lookup, reveal, check, shred, rotate, audit.

Envelope encryption: each conversation *epoch* has its own random data key (DEK), stored
wrapped under the newest KEK; HKDF sub-keys of the DEK seal values (AES-256-GCM, AAD =
tenant, conversation, epoch, reference, type) and key the blind index (HMAC-SHA256 of
type + value), so equal values share a reference within a conversation and are unlinkable
across conversations.

Shredding nulls the wrapped DEK, the ciphertexts and the blind indexes; the reference rows
stay as tombstones so old references raise `ConversationShredded`, not `UnknownReference`.
**Key epochs:** when a shredded conversation is tokenized again (the same sender returns),
a new epoch starts with a new DEK and new references; old references stay shredded.
This keeps shredding final while letting the conversation id be reused.

Concurrency: uniqueness lives in the database ((conversation, type, blind index),
(conversation, ref), (tenant, conversation, epoch)); a writer that loses a race gets an
IntegrityError, rolls back and retries the whole transaction, then sees the winner's row.
Unwrapped DEKs are cached in a bounded LRU, but every reveal reads the conversation row in
the same query as the value, so a shred by another worker is seen at once.

Lifecycle (issue 6, docs/lifecycle.md): `end` closes the live epoch under the per-type
retention policy (shred values now, keep them `mask`ed, or `retain` them until a deadline);
an ended epoch never takes new values (the next tokenize opens a new epoch), and its kept
values open only through `reveal_for` with a policy that allows it.  Values carry an
`expires_at` (per-type TTL, temporary references, retention deadlines); `expire_due`
forgets them and shreds ended epochs left empty, claiming rows with row locks so several
workers sweeping at once each act once.

Speed (issue 9): hot statements are built once.  A worker remembers each conversation's
live epoch (row id + wrapped DEK) after its creating transaction commits; tokenize then
inserts with `ON CONFLICT DO NOTHING RETURNING`, guarded in the same transaction by "that
epoch still has that wrapped DEK" (FOR SHARE on PostgreSQL, so a concurrent shred waits or
wins), and falls back to the locking path on any surprise.  The remembered epoch is only a
hint: it is checked in SQL on every call, never trusted.  The one-value statements (the
guarded insert, the one-reference find, the audit append) run on the DB-API cursor through
`vault/_driver.py`: SQLAlchemy's execute path cost ten times SQLite's own work for them.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, Table, bindparam, case, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql as _pg_dialect
from sqlalchemy.dialects import sqlite as _sqlite_dialect
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from coatcheck.grammar import REF_ID_RE as _REF_RE
from coatcheck.grammar import TYPE_NAME_RE as _TYPE_RE
from coatcheck.vault import _crypto, _driver, audit
from coatcheck.vault.audit import AuditRecord, AuditReport, Chain, Entry
from coatcheck.vault.errors import (
    ConcurrencyError,
    ConversationEnded,
    ConversationShredded,
    DecryptionError,
    GrantRefused,
    InvalidArgument,
    UnknownReference,
    ValueExpired,
)
from coatcheck.vault.grants import Grant
from coatcheck.vault.keyring import KeyRing
from coatcheck.vault.lifecycle import (
    EXPIRED,
    MASKED,
    RETAINED,
    SHREDDED,
    TEMPORARY,
    EndSummary,
    ExpirySummary,
    Holdings,
    Policies,
    ValueState,
)
from coatcheck.vault.models import Conversation, Kek, StoredValue
from coatcheck.vault.predicates import Predicate

__all__ = ["RefInfo", "Vault"]

# On PostgreSQL each statement is a round trip: up to this many new values go row by row
# (no SQLAlchemy execute path), more go as one multi-row INSERT.
_ROW_BY_ROW_PG = 4
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_REF_LEN = 10
_CONV = cast(Table, Conversation.__table__)
_VAL = cast(Table, StoredValue.__table__)
_KEK = cast(Table, Kek.__table__)
_Row = Row[*tuple[Any, ...]]
_T = TypeVar("_T")

# Hot-path statements are built once: SQLAlchemy then reuses their memoised cache keys
# and compiled forms, which is most of the per-call cost of building them afresh.
_FIND_FROM = (
    select(
        _VAL.c.ref,
        _VAL.c.entity_type,
        _VAL.c.ciphertext,
        _VAL.c.created_at,
        _VAL.c.status,
        _VAL.c.expires_at,
        _CONV.c.id,
        _CONV.c.epoch,
        _CONV.c.kek_version,
        _CONV.c.wrapped_dek,
        _CONV.c.ended_at,
    )
    .join(_CONV, _CONV.c.id == _VAL.c.conversation_pk)
    .where(_CONV.c.tenant == bindparam("tenant"), _CONV.c.conversation_id == bindparam("cid"))
    .order_by(_CONV.c.epoch.desc())
)
_FIND = _FIND_FROM.where(_VAL.c.ref.in_(bindparam("refs", expanding=True)))
# One reference (the common reveal): `=` instead of an expanding IN, run on the driver.
_FIND_ONE = _driver.Statement(_FIND_FROM.where(_VAL.c.ref == bindparam("ref")))
_KNOWN = select(_VAL.c.ref, _VAL.c.entity_type, _VAL.c.blind_index).where(
    _VAL.c.conversation_pk == bindparam("pk"),
    _VAL.c.blind_index.in_(bindparam("indexes", expanding=True)),
)
_LIVE_COLS = (_CONV.c.id, _CONV.c.epoch, _CONV.c.kek_version, _CONV.c.wrapped_dek, _CONV.c.ended_at)
# The newest epoch, live or shredded, read in ONE statement: reading "the live epoch" and
# then "the highest epoch" separately let a worker miss a live epoch committed between the
# two reads (READ COMMITTED) and open a second epoch beside it.
_LATEST = (
    select(*_LIVE_COLS)
    .where(_CONV.c.tenant == bindparam("tenant"), _CONV.c.conversation_id == bindparam("cid"))
    .order_by(_CONV.c.epoch.desc())
    .limit(1)
)
_STILL_LIVE = select(_CONV.c.id).where(
    _CONV.c.id == bindparam("pk"),
    _CONV.c.wrapped_dek == bindparam("wrapped"),
    _CONV.c.ended_at.is_(None),
)
_INSERT_VALUES = insert(_VAL)
_VALUE_COLS = (
    "conversation_pk",
    "ref",
    "entity_type",
    "blind_index",
    "ciphertext",
    "created_at",
    "expires_at",
)


class _Stale(Exception):
    """Internal: the cached conversation epoch is gone (shred, re-wrap); take the slow path."""


@dataclass(frozen=True)
class RefInfo:
    """What may be known about a reference without a grant: never the value."""

    ref: str
    entity_type: str
    created_at: float


class _Keys:
    """A conversation's sub-keys; repr never shows them."""

    __slots__ = ("index", "sealer")

    def __init__(self, dek: bytes) -> None:
        self.sealer = _crypto.Sealer(_crypto.derive(dek, b"coatcheck/value-seal/v1"))
        self.index = _crypto.derive(dek, b"coatcheck/blind-index/v1")

    def __repr__(self) -> str:
        return "_Keys(<redacted>)"


def _then(
    conn: Connection, refs: list[str], then: Callable[[Connection, list[str]], None] | None
) -> list[str]:
    """Run the caller's `then` hook in the tokenize transaction; pass the refs through."""
    if then is not None:
        then(conn, refs)
    return refs


def _new_ref() -> str:
    """10 random Crockford base32 characters (50 bits) from one CSPRNG read."""
    bits = secrets.randbits(5 * _REF_LEN)
    return "".join(_CROCKFORD[(bits >> (5 * i)) & 31] for i in range(_REF_LEN))


def _require(name: str, ok: bool) -> None:
    if not ok:
        raise InvalidArgument(name)


def _check_conversation(conversation_id: Any) -> None:
    _require(
        "conversation_id", isinstance(conversation_id, str) and 0 < len(conversation_id) <= 255
    )


def _check_ref(ref_id: Any) -> None:
    _require("ref_id", isinstance(ref_id, str) and _REF_RE.fullmatch(ref_id) is not None)


class _EndPlan:
    """What `Vault.end` does to each live value, grouped into a few UPDATEs."""

    def __init__(self) -> None:
        self.destroy: list[int] = []  # shred types and temporary values
        self.expired: list[int] = []  # past their TTL, not swept yet
        self.masked: list[int] = []
        self.retain: dict[float, list[int]] = {}  # deadline -> value ids
        self.kept: dict[int, set[str]] = {}  # epoch id -> statuses kept in it
        self.deadline: dict[int, float] = {}  # epoch id -> last retention deadline

    def add(self, value: _Row, policies: Policies, now: float) -> None:
        if value.expires_at is not None and value.expires_at <= now:
            self.expired.append(value.id)
            return
        retention = policies.retention_for(value.entity_type)
        if value.status == TEMPORARY or retention.mode == "shred":
            self.destroy.append(value.id)
            return
        pk = value.conversation_pk
        if retention.mode == "mask":
            self.masked.append(value.id)
            self.kept.setdefault(pk, set()).add(MASKED)
            return
        assert retention.seconds is not None
        deadline = now + retention.seconds
        if value.expires_at is not None:
            deadline = min(deadline, value.expires_at)
        self.retain.setdefault(deadline, []).append(value.id)
        self.kept.setdefault(pk, set()).add(RETAINED)
        self.deadline[pk] = max(deadline, self.deadline.get(pk, deadline))

    def apply(self, conn: Connection) -> None:
        gone = {"ciphertext": None, "blind_index": None}
        for ids, values in (
            (self.destroy, {**gone, "status": SHREDDED}),
            (self.expired, {**gone, "status": EXPIRED}),
            (self.masked, {"blind_index": None, "status": MASKED}),
        ):
            if ids:
                conn.execute(update(_VAL).where(_VAL.c.id.in_(ids)).values(**values))
        for deadline, ids in self.retain.items():
            conn.execute(
                update(_VAL)
                .where(_VAL.c.id.in_(ids))
                .values(blind_index=None, status=RETAINED, expires_at=deadline)
            )


class Vault:
    """One tenant's vault over one engine; thread-safe; clock injected for expiry and audit."""

    def __init__(
        self,
        engine: Engine,
        master_key: bytes | KeyRing,
        tenant: str = "default",
        clock: Callable[[], float] = time.time,
        *,
        cache_size: int = 4096,
        max_retries: int = 20,
        policies: Policies | None = None,
    ) -> None:
        _require("tenant", isinstance(tenant, str) and 0 < len(tenant) <= 64)
        self._engine = engine
        self._policies = policies if policies is not None else Policies()
        self._keyring = master_key if isinstance(master_key, KeyRing) else KeyRing(master_key)
        self._tenant = tenant
        self._clock = clock
        self._cache: OrderedDict[tuple[int, bytes], _Keys] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self._retries = max_retries
        self._pg = engine.dialect.name == "postgresql"
        # conversation id -> (row id, epoch, wrapped DEK) of its live epoch, as last committed
        # here; only a hint: the fast path re-checks it in SQL inside its own transaction.
        self._live_hint: OrderedDict[str, tuple[int, int, bytes]] = OrderedDict()
        self._chain = Chain()
        self._latest = _LATEST.with_for_update(read=True) if self._pg else _LATEST
        self._still_live = _STILL_LIVE.with_for_update(read=True) if self._pg else _STILL_LIVE
        dialect = {"postgresql": _pg_dialect, "sqlite": _sqlite_dialect}.get(engine.dialect.name)
        self._insert_new = (
            dialect.insert(_VAL).on_conflict_do_nothing().returning(_VAL.c.ref)
            if dialect is not None
            else None
        )
        # One value: liveness check and insert in ONE statement (INSERT ... SELECT ... WHERE
        # EXISTS (live epoch [FOR SHARE]) ON CONFLICT DO NOTHING RETURNING ref).
        one = select(*(bindparam(c, type_=_VAL.c[c].type) for c in _VALUE_COLS)).where(
            self._still_live.exists()
        )
        self._insert_one = (
            _driver.Statement(
                dialect.insert(_VAL)
                .from_select(list(_VALUE_COLS), one)
                .on_conflict_do_nothing()
                .returning(_VAL.c.ref)
            )
            if dialect is not None
            else None
        )
        self._retry("kek", self._ensure_kek)
        self._sync_keks()

    def __repr__(self) -> str:
        return f"Vault(tenant={self._tenant!r}, dialect={self._engine.dialect.name!r})"

    @property
    def keyring(self) -> KeyRing:
        return self._keyring

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def policies(self) -> Policies:
        """Per-type retention and TTL (docs/lifecycle.md)."""
        return self._policies

    # -- plumbing -------------------------------------------------------------------------

    def _retry(self, name: str, work: Callable[[Connection], _T]) -> _T:
        """Run `work` in a transaction; on a uniqueness race roll back and run it again."""
        for _ in range(self._retries):
            try:
                with self._engine.begin() as conn:
                    return work(conn)
            except IntegrityError:
                continue
        raise ConcurrencyError(name)

    def _reload_keks(self, conn: Connection) -> None:
        rows = conn.execute(
            select(_KEK.c.version, _KEK.c.wrapped).where(_KEK.c.tenant == self._tenant)
        )
        for version, wrapped in rows:
            if not self._keyring.knows(version):
                self._keyring.load(self._tenant, version, wrapped)

    def _sync_keks(self) -> None:
        with self._engine.begin() as conn:
            self._reload_keks(conn)

    def _ensure_kek(self, conn: Connection) -> None:
        self._reload_keks(conn)
        if self._keyring.newest is None:
            self._insert_kek(conn, 1)

    def _insert_kek(self, conn: Connection, version: int) -> None:
        wrapped = self._keyring.new_wrapped_kek(self._tenant, version)
        conn.execute(
            insert(_KEK).values(
                tenant=self._tenant, version=version, wrapped=wrapped, created_at=self._clock()
            )
        )
        # Not loaded here: a KEK joins the ring only after its row commits (see _sync_keks),
        # so a worker that loses the insert race never keeps a KEK nobody else has.

    def _dek_aad(self, conversation_id: str, epoch: int, version: int) -> bytes:
        return _crypto.aad("dek", self._tenant, conversation_id, epoch, version)

    def _value_aad(self, conversation_id: str, epoch: int, ref: str, entity_type: str) -> bytes:
        return _crypto.aad("value", self._tenant, conversation_id, epoch, ref, entity_type)

    def _cache_put(self, key: tuple[int, bytes], keys: _Keys) -> None:
        with self._cache_lock:
            self._cache[key] = keys
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _keys(self, conn: Connection, conv: _Row, conversation_id: str) -> _Keys:
        # Keyed by the committed wrapped DEK too, so a rolled-back (and on SQLite possibly
        # reused) row id can never match keys from another transaction.
        cache_key = (conv.id, conv.wrapped_dek)
        with self._cache_lock:
            keys = self._cache.get(cache_key)
            if keys is not None:
                self._cache.move_to_end(cache_key)
                return keys
        if not self._keyring.knows(conv.kek_version):
            self._reload_keks(conn)
        dek = self._keyring.unwrap_dek(
            conv.wrapped_dek,
            conv.kek_version,
            self._dek_aad(conversation_id, conv.epoch, conv.kek_version),
        )
        keys = _Keys(dek)
        self._cache_put(cache_key, keys)
        return keys

    # -- tokenize -------------------------------------------------------------------------

    def _live_conversation(self, conn: Connection, conversation_id: str) -> _Row:
        """The conversation's current epoch, creating it (or a new epoch after a shred)."""
        latest = conn.execute(
            self._latest, {"tenant": self._tenant, "cid": conversation_id}
        ).first()
        if latest is not None and latest.wrapped_dek is not None and latest.ended_at is None:
            return latest
        epoch = (latest.epoch if latest is not None else 0) + 1
        version = self._keyring.newest
        assert version is not None  # _ensure_kek ran in __init__
        dek = _crypto.new_key()
        wrapped = self._keyring.wrap_dek(
            dek, version, self._dek_aad(conversation_id, epoch, version)
        )
        new = conn.execute(
            insert(_CONV)
            .values(
                tenant=self._tenant,
                conversation_id=conversation_id,
                epoch=epoch,
                kek_version=version,
                wrapped_dek=wrapped,
                created_at=self._clock(),
            )
            .returning(*_LIVE_COLS)
        ).one()
        return new

    def _new_rows(
        self,
        keys: _Keys,
        conversation_id: str,
        conv: tuple[int, int],
        items: Sequence[tuple[str, str]],
        skip: dict[tuple[str, bytes], str],
    ) -> tuple[list[tuple[str, bytes]], list[dict[str, Any]]]:
        """Blind indexes of `items`, and sealed rows with fresh refs for those not in `skip`."""
        pk, epoch = conv
        index_keys = [(t, _crypto.hmac_sha256(keys.index, _crypto.aad(t, v))) for t, v in items]
        rows: list[dict[str, Any]] = []
        now = self._clock()
        ttl = self._policies.ttl
        fresh: dict[tuple[str, bytes], str] = {}
        for (entity_type, value), key in zip(items, index_keys, strict=True):
            if key in skip or key in fresh:
                continue
            ref = fresh[key] = _new_ref()
            lifetime = ttl.get(entity_type)
            sealed = keys.sealer.seal(
                value.encode("utf-8"), self._value_aad(conversation_id, epoch, ref, entity_type)
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
        return index_keys, rows

    def _known(
        self, conn: Connection, pk: int, index_keys: Iterable[tuple[str, bytes]]
    ) -> dict[tuple[str, bytes], str]:
        indexes = sorted({index for _, index in index_keys})
        if not indexes:
            return {}
        return {
            (row.entity_type, row.blind_index): row.ref
            for row in conn.execute(_KNOWN, {"pk": pk, "indexes": indexes})
        }

    def _tokenize_tx(
        self, conn: Connection, conversation_id: str, items: Sequence[tuple[str, str]]
    ) -> tuple[list[str], _Row]:
        """Slow path: (create and) lock the live epoch, look up known values, insert new ones."""
        conv = self._live_conversation(conn, conversation_id)
        keys = self._keys(conn, conv, conversation_id)
        probe = [(t, _crypto.hmac_sha256(keys.index, _crypto.aad(t, v))) for t, v in items]
        known = self._known(conn, conv.id, probe)
        index_keys, rows = self._new_rows(
            keys, conversation_id, (conv.id, conv.epoch), items, known
        )
        if rows:
            conn.execute(_INSERT_VALUES, rows)
            known.update({(r["entity_type"], r["blind_index"]): r["ref"] for r in rows})
        return [known[key] for key in index_keys], conv

    def _fast_tokenize_tx(
        self,
        conn: Connection,
        conversation_id: str,
        hint: tuple[int, int, bytes],
        keys: _Keys,
        items: Sequence[tuple[str, str]],
    ) -> list[str]:
        """Cached epoch: check it is still live (and lock it on PG), then insert-or-ignore."""
        assert self._insert_new is not None
        assert self._insert_one is not None
        pk, epoch, wrapped = hint
        index_keys, rows = self._new_rows(keys, conversation_id, (pk, epoch), items, {})
        if not self._pg or len(rows) <= _ROW_BY_ROW_PG:
            # Row by row on the driver: each INSERT carries its own liveness check.  Nothing
            # inserted means a known value, or the epoch is gone (shred nulls the blind
            # indexes, so the lookup below finds nothing and we take the slow path).
            inserted = set()
            for row in rows:
                inserted.update(
                    self._insert_one.scalars(conn, {**row, "pk": pk, "wrapped": wrapped})
                )
        else:
            if conn.execute(self._still_live, {"pk": pk, "wrapped": wrapped}).first() is None:
                raise _Stale()
            inserted = set(conn.execute(self._insert_new, rows).scalars())
        refs = {(r["entity_type"], r["blind_index"]): r["ref"] for r in rows}
        lost = [key for key, ref in refs.items() if ref not in inserted]
        if lost:
            # Another call stored these values first (or, rarely, a fresh ref collided).
            known = self._known(conn, pk, lost)
            if any(key not in known for key in lost):
                raise _Stale()
            refs.update(known)
        return [refs[key] for key in index_keys]

    def _hint(self, conversation_id: str) -> tuple[tuple[int, int, bytes], _Keys] | None:
        with self._cache_lock:
            hint = self._live_hint.get(conversation_id)
            if hint is None:
                return None
            keys = self._cache.get((hint[0], hint[2]))
            if keys is None:
                del self._live_hint[conversation_id]
                return None
            self._live_hint.move_to_end(conversation_id)
            self._cache.move_to_end((hint[0], hint[2]))
            return hint, keys

    def _remember(self, conversation_id: str, conv: _Row) -> None:
        with self._cache_lock:
            self._live_hint[conversation_id] = (conv.id, conv.epoch, conv.wrapped_dek)
            self._live_hint.move_to_end(conversation_id)
            while len(self._live_hint) > self._cache_size:
                self._live_hint.popitem(last=False)

    def _forget(self, conversation_id: str) -> None:
        with self._cache_lock:
            self._live_hint.pop(conversation_id, None)

    def tokenize_many(
        self,
        conversation_id: str,
        items: Iterable[tuple[str, str]],
        *,
        then: Callable[[Connection, list[str]], None] | None = None,
    ) -> list[str]:
        """Vault every value in ONE transaction (all or none); returns bare reference ids.

        Fast path (epoch cached here): two statements, a liveness check of the cached epoch
        and one multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING, plus a SELECT only
        for values stored before.  Anything unexpected falls back to the locking slow path.

        `then(conn, refs)` runs last inside the same transaction, so a caller can commit its
        own rows together with the values (the gateway's history line: one durable write
        instead of two).  If it raises, the values are rolled back too; it may run more
        than once (a retried or stale-path transaction), each time in a fresh transaction.
        """
        _check_conversation(conversation_id)
        batch = list(items)
        for entity_type, value in batch:
            _require(
                "entity_type",
                isinstance(entity_type, str) and bool(_TYPE_RE.fullmatch(entity_type)),
            )
            _require("value", isinstance(value, str))
        if not batch:
            return []
        cached = self._hint(conversation_id) if self._insert_new is not None else None
        if cached is not None:
            hint, keys = cached
            try:
                return self._retry(
                    "tokenize",
                    lambda conn: _then(
                        conn,
                        self._fast_tokenize_tx(conn, conversation_id, hint, keys, batch),
                        then,
                    ),
                )
            except _Stale:
                self._forget(conversation_id)

        def slow(conn: Connection) -> tuple[list[str], _Row]:
            refs, conv = self._tokenize_tx(conn, conversation_id, batch)
            return _then(conn, refs, then), conv

        refs, conv = self._retry("tokenize", slow)
        self._remember(conversation_id, conv)
        return refs

    def tokenize(self, conversation_id: str, entity_type: str, value: str) -> str:
        """Vault one value; the same value and type in one conversation give the same ref."""
        return self.tokenize_many(conversation_id, [(entity_type, value)])[0]

    # -- read side ------------------------------------------------------------------------

    def _find(
        self, conn: Connection, conversation_id: str, ref_ids: Sequence[str]
    ) -> dict[str, _Row]:
        """Each ref's row joined with its epoch (so a shred elsewhere shows at once)."""
        found: dict[str, _Row] = {}
        params: dict[str, Any] = {"tenant": self._tenant, "cid": conversation_id}
        if len(ref_ids) == 1:
            rows: Iterable[Any] = _FIND_ONE.rows(conn, {**params, "ref": ref_ids[0]})
        else:
            rows = conn.execute(_FIND, {**params, "refs": sorted(set(ref_ids))})
        for row in rows:
            found.setdefault(row.ref, row)  # newest epoch first
        return found

    def _open(self, conn: Connection, conversation_id: str, row: _Row) -> str:
        keys = self._keys(conn, row, conversation_id)
        plain = keys.sealer.open(
            row.ciphertext, self._value_aad(conversation_id, row.epoch, row.ref, row.entity_type)
        )
        return plain.decode("utf-8")

    def lookup(self, conversation_id: str, ref_id: str) -> RefInfo:
        """Type and creation time of a reference; no value, no audit."""
        _check_conversation(conversation_id)
        _check_ref(ref_id)
        with self._engine.begin() as conn:
            row = self._find(conn, conversation_id, [ref_id]).get(ref_id)
        if row is None:
            raise UnknownReference(ref_id)
        return RefInfo(row.ref, row.entity_type, row.created_at)

    def _read_audited(
        self,
        conversation_id: str,
        ref_ids: Sequence[str],
        *,
        action: str,
        actor: str,
        purpose: str | None,
        decide: Callable[[_Row], str | None],
        use: Callable[[str], _T],
        all_or_nothing: bool = False,
        detailed: bool = False,
    ) -> list[tuple[str, _T | None]]:
        """Find, authorise (`decide` gives a refusal reason), decrypt, audit: one transaction.

        With `all_or_nothing`, nothing is decrypted unless every reference passes, and only
        the failing references are audited (the others were not revealed).  With `detailed`,
        a refusal is audited with its reason (`refused:<reason>`), else as `refused`.
        """
        results: list[tuple[str, _T | None]] = []
        with self._engine.begin() as conn:
            found = self._find(conn, conversation_id, ref_ids)
            rows = [found.get(ref) for ref in ref_ids]
            now = self._clock()
            prechecks = [self._precheck(row, decide, now) for row in rows]
            withhold = all_or_nothing and any(p is not None for p in prechecks)
            for row, pre in zip(rows, prechecks, strict=True):
                if pre is not None or row is None:
                    results.append((pre or "unknown", None))
                elif withhold:
                    results.append(("ok", None))  # not opened, not audited
                else:
                    try:
                        results.append(("ok", use(self._open(conn, conversation_id, row))))
                    except DecryptionError:
                        results.append(("error", None))
            failed = any(outcome != "ok" for outcome, _ in results)
            if all_or_nothing and failed:
                results = [(outcome, None) for outcome, _ in results]
            at = self._clock()
            self._chain.append(
                conn,
                [
                    Entry(
                        at,
                        self._tenant,
                        actor,
                        action,
                        outcome[:32] if detailed else outcome.partition(":")[0],
                        conversation_id,
                        ref,
                        row.entity_type if row is not None else None,
                        purpose,
                    )
                    for ref, row, (outcome, _) in zip(ref_ids, rows, results, strict=True)
                    if not (all_or_nothing and failed and outcome == "ok")
                ],
            )
        return results

    @staticmethod
    def _gone(row: _Row, now: float) -> str | None:
        """Why a found value can no longer be opened (`shredded` / `expired`), else None."""
        if row.wrapped_dek is None:
            return "shredded"
        expired = row.expires_at is not None and row.expires_at <= now
        if row.ciphertext is None or expired:
            # A retained value past its deadline is shredded by policy; others expired.
            return "expired" if row.status not in (RETAINED, SHREDDED) else "shredded"
        return None

    def _precheck(
        self, row: _Row | None, decide: Callable[[_Row], str | None], now: float
    ) -> str | None:
        """unknown -> the decider's refusal -> gone; deciders step aside for gone values."""
        if row is None:
            return "unknown"
        refusal = decide(row)
        if refusal is not None:
            return "refused:" + refusal
        return self._gone(row, now)

    def _ended(self, row: _Row, now: float) -> bool:
        """The value is still held but its conversation (key epoch) has ended."""
        return row.ended_at is not None and self._gone(row, now) is None

    @staticmethod
    def _raise_for(outcome: str, ref_id: str) -> None:
        if outcome == "refused:ended":
            raise ConversationEnded(ref_id)
        if outcome.startswith("refused:"):
            raise GrantRefused(outcome.removeprefix("refused:"))
        if outcome == "unknown":
            raise UnknownReference(ref_id)
        if outcome == "shredded":
            raise ConversationShredded(ref_id)
        if outcome == "expired":
            raise ValueExpired(ref_id)
        if outcome == "error":
            raise DecryptionError()

    def _grant_decider(
        self, conversation_id: str, grant: Grant, now: float
    ) -> Callable[[_Row], str | None]:
        def decide(row: _Row) -> str | None:
            if grant.conversation_id != conversation_id:
                return "conversation"
            if grant.expires_at <= now:
                return "expired"
            if row.entity_type not in grant.entity_types:
                return "entity_type"
            if self._ended(row, now):
                return "ended"
            return None

        return decide

    def _raise_revealed(
        self, conversation_id: str, grant: Grant, now: float, outcome: str, ref_id: str
    ) -> None:
        if outcome == "unknown" and (
            grant.conversation_id != conversation_id or grant.expires_at <= now
        ):
            raise GrantRefused(
                "conversation" if grant.conversation_id != conversation_id else "expired"
            )
        self._raise_for(outcome, ref_id)

    def reveal(self, conversation_id: str, ref_id: str, grant: Grant) -> str:
        """The value, if `grant` covers this conversation and type and has not expired; audited."""
        return self.reveal_many(conversation_id, [ref_id], grant)[0]

    def reveal_many(self, conversation_id: str, ref_ids: Sequence[str], grant: Grant) -> list[str]:
        """Several values under one grant in one transaction, each reveal audited.

        All or nothing: if any reference is refused, unknown, shredded or fails to open, no
        value is returned, the failing references are audited, and the first failure raises.
        A value whose conversation has ended is refused (`ConversationEnded`): grants are
        for live conversations only.
        """
        _check_conversation(conversation_id)
        refs = list(ref_ids)
        for ref_id in refs:
            _check_ref(ref_id)
        if not refs:
            return []
        now = self._clock()
        results = self._read_audited(
            conversation_id,
            refs,
            action="reveal",
            actor=grant.caller,
            purpose=grant.purpose,
            decide=self._grant_decider(conversation_id, grant, now),
            use=lambda v: v,
            all_or_nothing=True,
        )
        for ref_id, (outcome, _) in zip(refs, results, strict=True):
            if outcome != "ok":
                self._raise_revealed(conversation_id, grant, now, outcome, ref_id)
        return [cast(str, value) for _, value in results]

    def reveal_for(
        self,
        conversation_id: str,
        ref_id: str,
        *,
        actor: str,
        purpose: str | None,
        policy: Callable[[ValueState], str | None],
    ) -> str:
        """The value if `policy` allows it (returns None), for callers without a grant.

        `policy` sees a `ValueState` (type, ended, kept status; never the value) and returns
        a refusal reason or None.  Unknown, shredded and expired values raise before the
        policy is asked.  Every attempt is audited as `reveal` by `actor` with `purpose`,
        a refusal with its reason (`refused:<reason>`); a refusal raises `GrantRefused`.
        """
        _check_conversation(conversation_id)
        _check_ref(ref_id)
        now = self._clock()

        def decide(row: _Row) -> str | None:
            if self._gone(row, now) is not None:
                return None
            state = ValueState(
                row.ref, row.entity_type, row.ended_at is not None, row.status, row.expires_at
            )
            return policy(state)

        [(outcome, value)] = self._read_audited(
            conversation_id,
            [ref_id],
            action="reveal",
            actor=actor,
            purpose=purpose,
            decide=decide,
            use=lambda v: v,
            detailed=True,
        )
        if outcome.startswith("refused:"):
            raise GrantRefused(outcome.removeprefix("refused:"))
        self._raise_for(outcome, ref_id)
        return cast(str, value)

    def check(
        self, conversation_id: str, ref_id: str, predicate: Predicate, actor: str, purpose: str
    ) -> bool:
        """Run `predicate` on the value inside the vault; only the boolean leaves; audited.

        Like grants, checks reach only values of a live conversation (`ConversationEnded`).
        """
        _check_conversation(conversation_id)
        _check_ref(ref_id)
        now = self._clock()
        [(outcome, result)] = self._read_audited(
            conversation_id,
            [ref_id],
            action="check",
            actor=actor,
            purpose=purpose,
            decide=lambda row: "ended" if self._ended(row, now) else None,
            use=predicate,
        )
        self._raise_for(outcome, ref_id)
        return bool(result)

    # -- lifecycle ------------------------------------------------------------------------

    def _evict(self, conversation_id: str | None, epoch_ids: Iterable[int]) -> None:
        """Drop cached keys of shredded epochs (and the conversation's live-epoch hint)."""
        gone = set(epoch_ids)
        with self._cache_lock:
            for key in [k for k in self._cache if k[0] in gone]:
                del self._cache[key]
            if conversation_id is not None:
                self._live_hint.pop(conversation_id, None)

    def shred(self, conversation_id: str, actor: str) -> None:
        """Destroy the conversation's data key and ciphertexts now, whatever the policy.

        Audited; idempotent.  Every epoch is shredded and marked ended.
        """
        _check_conversation(conversation_id)
        now = self._clock()
        with self._engine.begin() as conn:
            ids = list(
                conn.execute(
                    select(_CONV.c.id)
                    .where(
                        _CONV.c.tenant == self._tenant,
                        _CONV.c.conversation_id == conversation_id,
                        _CONV.c.wrapped_dek.is_not(None),
                    )
                    .with_for_update()
                ).scalars()
            )
            if ids:
                conn.execute(
                    update(_CONV)
                    .where(_CONV.c.id.in_(ids))
                    .values(
                        wrapped_dek=None,
                        shredded_at=now,
                        ended_at=func.coalesce(_CONV.c.ended_at, now),
                        end_status=SHREDDED,
                        retain_until=None,
                    )
                )
                conn.execute(
                    update(_VAL)
                    .where(_VAL.c.conversation_pk.in_(ids))
                    .values(
                        ciphertext=None,
                        blind_index=None,
                        status=case(
                            (_VAL.c.ciphertext.is_not(None), SHREDDED), else_=_VAL.c.status
                        ),
                    )
                )
            entry = Entry(
                now, self._tenant, actor, "shred", "ok" if ids else "noop", conversation_id
            )
            self._chain.append(conn, [entry])
        self._evict(conversation_id, ids)

    def end(
        self,
        conversation_id: str,
        actor: str,
        reason: str,
        *,
        conn: Connection | None = None,
    ) -> EndSummary:
        """End every epoch of the conversation that has not ended, under the retention policy.

        Per value (docs/lifecycle.md): temporary values, values past their TTL and values of
        `shred` types are destroyed (ciphertext and blind index nulled); `mask` types are
        kept as `masked`; `retain` types as `retained` until now + the type's period (or
        their TTL, if sooner).  An epoch left with nothing kept has its data key shredded at
        once.  Kept values lose their blind index: an ended epoch never takes values again,
        the next tokenize opens a new epoch.  One `end` audit row (outcome `shredded`,
        `masked`, `retained` or `noop`, purpose = `reason`).

        With `conn`, runs inside the caller's transaction (the gateway ends its own state
        in the same commit); the epoch rows are locked FOR UPDATE before any value.
        """
        _check_conversation(conversation_id)
        if conn is not None:
            summary, shredded = self._end_tx(conn, conversation_id, actor, reason)
        else:
            with self._engine.begin() as own:
                summary, shredded = self._end_tx(own, conversation_id, actor, reason)
        self._evict(conversation_id, shredded)
        return summary

    def _end_tx(
        self, conn: Connection, conversation_id: str, actor: str, reason: str
    ) -> tuple[EndSummary, list[int]]:
        now = self._clock()
        epochs = conn.execute(
            select(_CONV.c.id, _CONV.c.wrapped_dek)
            .where(
                _CONV.c.tenant == self._tenant,
                _CONV.c.conversation_id == conversation_id,
                _CONV.c.ended_at.is_(None),
            )
            .order_by(_CONV.c.id)
            .with_for_update()
        ).all()
        live = [e.id for e in epochs if e.wrapped_dek is not None]
        dead = [e.id for e in epochs if e.wrapped_dek is None]  # shredded, never marked ended
        plan = _EndPlan()
        if live:
            values = conn.execute(
                select(
                    _VAL.c.id,
                    _VAL.c.conversation_pk,
                    _VAL.c.entity_type,
                    _VAL.c.status,
                    _VAL.c.expires_at,
                ).where(_VAL.c.conversation_pk.in_(live), _VAL.c.ciphertext.is_not(None))
            ).all()
            for value in values:
                plan.add(value, self._policies, now)
            plan.apply(conn)
        empty = [pk for pk in live if pk not in plan.kept]
        if empty or dead:
            conn.execute(
                update(_CONV)
                .where(_CONV.c.id.in_(empty + dead))
                .values(
                    wrapped_dek=None,
                    shredded_at=func.coalesce(_CONV.c.shredded_at, now),
                    ended_at=now,
                    end_status=SHREDDED,
                )
            )
        for pk, statuses in plan.kept.items():
            conn.execute(
                update(_CONV)
                .where(_CONV.c.id == pk)
                .values(
                    ended_at=now,
                    end_status=MASKED if MASKED in statuses else RETAINED,
                    retain_until=plan.deadline.get(pk),
                )
            )
        summary = EndSummary(
            ended_epochs=len(epochs),
            shredded=len(plan.destroy) + len(plan.expired),
            masked=len(plan.masked),
            retained=sum(len(ids) for ids in plan.retain.values()),
            holdings=self._holdings(conn, conversation_id),
        )
        entry = Entry(
            now, self._tenant, actor, "end", summary.outcome, conversation_id, purpose=reason
        )
        self._chain.append(conn, [entry])
        return summary, empty

    def tokenize_temporary(
        self, conversation_id: str, entity_type: str, value: str, ttl_seconds: float | None
    ) -> tuple[str, float | None]:
        """Vault a value under a fresh, single-use reference; returns (ref, expires_at).

        Never deduplicated (no blind index), forgotten after `ttl_seconds` (capped by the
        type's TTL; None = no limit of its own) and always destroyed when the conversation
        ends, whatever the type's retention.
        """
        _check_conversation(conversation_id)
        _require(
            "entity_type", isinstance(entity_type, str) and bool(_TYPE_RE.fullmatch(entity_type))
        )
        _require("value", isinstance(value, str))
        if ttl_seconds is not None:
            number = isinstance(ttl_seconds, int | float) and not isinstance(ttl_seconds, bool)
            _require("ttl_seconds", number and ttl_seconds > 0)
        limits = [t for t in (ttl_seconds, self._policies.ttl_for(entity_type)) if t is not None]

        def work(conn: Connection) -> tuple[str, float | None, _Row]:
            conv = self._live_conversation(conn, conversation_id)
            keys = self._keys(conn, conv, conversation_id)
            now = self._clock()
            expires = now + min(limits) if limits else None
            ref = _new_ref()
            sealed = keys.sealer.seal(
                value.encode("utf-8"),
                self._value_aad(conversation_id, conv.epoch, ref, entity_type),
            )
            row = {
                "conversation_pk": conv.id,
                "ref": ref,
                "entity_type": entity_type,
                "blind_index": None,
                "ciphertext": sealed,
                "created_at": now,
                "expires_at": expires,
                "status": TEMPORARY,
            }
            conn.execute(_INSERT_VALUES, [row])
            return ref, expires, conv

        ref, expires, conv = self._retry("tokenize", work)
        self._remember(conversation_id, conv)
        return ref, expires

    def expire_due(
        self, actor: str = "sweeper", *, limit: int = 500, conn: Connection | None = None
    ) -> ExpirySummary:
        """Forget values past `expires_at`; shred ended epochs left with nothing; audited.

        Claims work with row locks, so workers sweeping at once each act once: the epochs
        holding due values are locked FOR UPDATE SKIP LOCKED on PostgreSQL (another
        sweeper's, an `end`'s or a tokenize's epochs are left for the next pass; SQLite's
        BEGIN IMMEDIATE serialises sweepers anyway), and the UPDATE re-checks
        `ciphertext IS NOT NULL`.  Epoch first, values second: the order `end`, `shred` and
        tokenize use, so no deadlock.  One `expire` audit row per value (purpose `ttl`, or
        `retention` for a retained value, now shredded), one `shred` row per epoch.  Claims
        the epochs of at most `limit` due values per call (all their due values are
        forgotten); with `conn`, inside the caller's transaction.
        """
        _require("limit", isinstance(limit, int) and limit > 0)
        if conn is not None:
            summary, shredded = self._expire_tx(conn, actor, limit)
        else:
            with self._engine.begin() as own:
                summary, shredded = self._expire_tx(own, actor, limit)
        self._evict(None, shredded)
        return summary

    def _expire_tx(
        self, conn: Connection, actor: str, limit: int
    ) -> tuple[ExpirySummary, list[int]]:
        now = self._clock()
        # Claim: the epochs holding due values, locked in the same statement, skipping
        # those another transaction holds (the SKIP LOCKED queue pattern on PostgreSQL).
        claim = (
            select(_CONV.c.id, _CONV.c.conversation_id, _CONV.c.ended_at)
            .join(_VAL, _VAL.c.conversation_pk == _CONV.c.id)
            .where(
                _CONV.c.tenant == self._tenant,
                _CONV.c.wrapped_dek.is_not(None),
                _VAL.c.expires_at <= now,
                _VAL.c.ciphertext.is_not(None),
            )
            .limit(limit)
            .with_for_update(of=_CONV, skip_locked=True)
        )
        locked = list({row.id: row for row in conn.execute(claim)}.values())
        if not locked:
            return ExpirySummary(), []
        names = {row.id: row.conversation_id for row in locked}
        forgotten = conn.execute(
            update(_VAL)
            .where(
                _VAL.c.conversation_pk.in_(list(names)),
                _VAL.c.expires_at <= now,
                _VAL.c.ciphertext.is_not(None),
            )
            .values(
                ciphertext=None,
                blind_index=None,
                status=case((_VAL.c.status == RETAINED, SHREDDED), else_=EXPIRED),
            )
            .returning(_VAL.c.conversation_pk, _VAL.c.ref, _VAL.c.entity_type, _VAL.c.status)
        ).all()
        ended = [row.id for row in locked if row.ended_at is not None]
        shredded: list[int] = []
        if ended:
            holds = exists().where(
                _VAL.c.conversation_pk == _CONV.c.id, _VAL.c.ciphertext.is_not(None)
            )
            shredded = list(
                conn.execute(
                    update(_CONV)
                    .where(_CONV.c.id.in_(ended), _CONV.c.wrapped_dek.is_not(None), ~holds)
                    .values(
                        wrapped_dek=None, shredded_at=now, end_status=SHREDDED, retain_until=None
                    )
                    .returning(_CONV.c.id)
                ).scalars()
            )
        entries = [
            Entry(
                now,
                self._tenant,
                actor,
                "expire",
                "ok",
                names[row.conversation_pk],
                row.ref,
                row.entity_type,
                "retention" if row.status == SHREDDED else "ttl",
            )
            for row in sorted(forgotten, key=lambda r: (r.conversation_pk, r.ref))
        ]
        entries += [
            Entry(now, self._tenant, actor, "shred", "ok", names[pk], purpose="retention")
            for pk in sorted(shredded)
        ]
        self._chain.append(conn, entries)
        touched = {names[row.conversation_pk] for row in forgotten} | {names[pk] for pk in shredded}
        summary = ExpirySummary(len(forgotten), len(shredded), frozenset(touched))
        return summary, shredded

    def holdings(self, conversation_id: str, *, conn: Connection | None = None) -> Holdings:
        """What the vault holds for the conversation id over all epochs (no values)."""
        _check_conversation(conversation_id)
        if conn is not None:
            return self._holdings(conn, conversation_id)
        with self._engine.connect() as own:
            return self._holdings(own, conversation_id)

    def _holdings(self, conn: Connection, conversation_id: str) -> Holdings:
        mine = (_CONV.c.tenant == self._tenant, _CONV.c.conversation_id == conversation_id)
        live_epoch = case(
            (_CONV.c.wrapped_dek.is_not(None) & _CONV.c.ended_at.is_(None), 1), else_=0
        )
        epochs, live = conn.execute(
            select(func.count(_CONV.c.id), func.coalesce(func.sum(live_epoch), 0)).where(*mine)
        ).one()
        kept = conn.execute(
            select(_VAL.c.status, func.count(_VAL.c.id), func.max(_VAL.c.expires_at))
            .join(_CONV, _CONV.c.id == _VAL.c.conversation_pk)
            .where(
                *mine,
                _CONV.c.ended_at.is_not(None),
                _CONV.c.wrapped_dek.is_not(None),
                _VAL.c.ciphertext.is_not(None),
                _VAL.c.status.in_((MASKED, RETAINED)),
            )
            .group_by(_VAL.c.status)
        ).all()
        counts = {row[0]: (int(row[1]), row[2]) for row in kept}
        masked = counts.get(MASKED, (0, None))[0]
        retained, retain_until = counts.get(RETAINED, (0, None))
        return Holdings(int(epochs), bool(live), masked, retained, retain_until)

    def _add_kek_version(self, conn: Connection) -> int:
        self._reload_keks(conn)
        newest = conn.execute(
            select(func.max(_KEK.c.version)).where(_KEK.c.tenant == self._tenant)
        ).scalar()
        version = (newest or 0) + 1
        self._insert_kek(conn, version)
        return version

    def _rewrap_batch(self, conn: Connection, version: int, batch: int) -> int:
        rows = conn.execute(
            select(
                _CONV.c.id,
                _CONV.c.conversation_id,
                _CONV.c.epoch,
                _CONV.c.kek_version,
                _CONV.c.wrapped_dek,
            )
            .where(
                _CONV.c.tenant == self._tenant,
                _CONV.c.wrapped_dek.is_not(None),
                _CONV.c.kek_version < version,
            )
            .order_by(_CONV.c.id)
            .limit(batch)
        ).all()
        for row in rows:
            if not self._keyring.knows(row.kek_version):
                self._reload_keks(conn)
            dek = self._keyring.unwrap_dek(
                row.wrapped_dek,
                row.kek_version,
                self._dek_aad(row.conversation_id, row.epoch, row.kek_version),
            )
            rewrapped = self._keyring.wrap_dek(
                dek, version, self._dek_aad(row.conversation_id, row.epoch, version)
            )
            conn.execute(
                update(_CONV)
                .where(
                    _CONV.c.id == row.id,
                    _CONV.c.kek_version == row.kek_version,
                    _CONV.c.wrapped_dek.is_not(None),
                )
                .values(wrapped_dek=rewrapped, kek_version=version)
            )
        return len(rows)

    def rotate(self, actor: str, batch: int = 500) -> int:
        """Add a KEK version and re-wrap every live data key under it, in batches, online."""
        version = self._retry("rotate", self._add_kek_version)
        self._sync_keks()
        rewrapped = 0
        while True:
            with self._engine.begin() as conn:
                done = self._rewrap_batch(conn, version, batch)
            rewrapped += done
            if done == 0:
                break
        with self._engine.begin() as conn:
            purpose = f"kek v{version}, {rewrapped} data keys re-wrapped"
            entry = Entry(self._clock(), self._tenant, actor, "rotate", "ok", purpose=purpose)
            self._chain.append(conn, [entry])
        return version

    # -- audit ----------------------------------------------------------------------------

    def verify_audit(self) -> AuditReport:
        with self._engine.begin() as conn:
            return audit.verify(conn)

    def audit_rows(
        self,
        *,
        conversation_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 1000,
    ) -> list[AuditRecord]:
        with self._engine.begin() as conn:
            return audit.list_rows(
                conn, conversation_id=conversation_id, actor=actor, action=action, limit=limit
            )
