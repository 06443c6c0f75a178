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
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, Table, func, insert, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from vault import _crypto, audit
from vault.audit import AuditRecord, AuditReport
from vault.errors import (
    ConcurrencyError,
    ConversationShredded,
    DecryptionError,
    GrantRefused,
    InvalidArgument,
    UnknownReference,
)
from vault.grants import Grant
from vault.keyring import KeyRing
from vault.models import Conversation, Kek, StoredValue
from vault.predicates import Predicate

__all__ = ["RefInfo", "Vault"]

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_REF_LEN = 10
_TYPE_RE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_REF_RE = re.compile(r"[0-9a-hjkmnp-tv-z]{10}")
_CONV = cast(Table, Conversation.__table__)
_VAL = cast(Table, StoredValue.__table__)
_KEK = cast(Table, Kek.__table__)
_Row = Row[*tuple[Any, ...]]
_T = TypeVar("_T")


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


def _new_ref() -> str:
    return "".join(secrets.choice(_CROCKFORD) for _ in range(_REF_LEN))


def _require(name: str, ok: bool) -> None:
    if not ok:
        raise InvalidArgument(name)


def _check_conversation(conversation_id: Any) -> None:
    _require(
        "conversation_id", isinstance(conversation_id, str) and 0 < len(conversation_id) <= 255
    )


def _check_ref(ref_id: Any) -> None:
    _require("ref_id", isinstance(ref_id, str) and _REF_RE.fullmatch(ref_id) is not None)


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
    ) -> None:
        _require("tenant", isinstance(tenant, str) and 0 < len(tenant) <= 64)
        self._engine = engine
        self._keyring = master_key if isinstance(master_key, KeyRing) else KeyRing(master_key)
        self._tenant = tenant
        self._clock = clock
        self._cache: OrderedDict[tuple[int, bytes], _Keys] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self._retries = max_retries
        self._pg = engine.dialect.name == "postgresql"
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
        cols = (_CONV.c.id, _CONV.c.epoch, _CONV.c.kek_version, _CONV.c.wrapped_dek)
        query = select(*cols).where(
            _CONV.c.tenant == self._tenant,
            _CONV.c.conversation_id == conversation_id,
            _CONV.c.wrapped_dek.is_not(None),
        )
        if self._pg:
            query = query.with_for_update(read=True)
        row = conn.execute(query).first()
        if row is not None:
            return row
        last = conn.execute(
            select(func.max(_CONV.c.epoch)).where(
                _CONV.c.tenant == self._tenant, _CONV.c.conversation_id == conversation_id
            )
        ).scalar()
        epoch = (last or 0) + 1
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
            .returning(*cols)
        ).one()
        return new

    def _tokenize_tx(
        self, conn: Connection, conversation_id: str, items: Sequence[tuple[str, str]]
    ) -> list[str]:
        conv = self._live_conversation(conn, conversation_id)
        keys = self._keys(conn, conv, conversation_id)
        indexes = [_crypto.hmac_sha256(keys.index, _crypto.aad(t, v)) for t, v in items]
        known: dict[tuple[str, bytes], str] = {
            (row.entity_type, row.blind_index): row.ref
            for row in conn.execute(
                select(_VAL.c.ref, _VAL.c.entity_type, _VAL.c.blind_index).where(
                    _VAL.c.conversation_pk == conv.id, _VAL.c.blind_index.in_(set(indexes))
                )
            )
        }
        refs: list[str] = []
        new_rows: list[dict[str, Any]] = []
        now = self._clock()
        for (entity_type, value), index in zip(items, indexes, strict=True):
            ref = known.get((entity_type, index))
            if ref is None:
                ref = known[(entity_type, index)] = _new_ref()
                sealed = keys.sealer.seal(
                    value.encode("utf-8"),
                    self._value_aad(conversation_id, conv.epoch, ref, entity_type),
                )
                new_rows.append(
                    {
                        "conversation_pk": conv.id,
                        "ref": ref,
                        "entity_type": entity_type,
                        "blind_index": index,
                        "ciphertext": sealed,
                        "created_at": now,
                    }
                )
            refs.append(ref)
        if new_rows:
            conn.execute(insert(_VAL), new_rows)
        return refs

    def tokenize_many(self, conversation_id: str, items: Iterable[tuple[str, str]]) -> list[str]:
        """Vault every value in ONE transaction (all or none); returns bare reference ids."""
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
        return self._retry("tokenize", lambda conn: self._tokenize_tx(conn, conversation_id, batch))

    def tokenize(self, conversation_id: str, entity_type: str, value: str) -> str:
        """Vault one value; the same value and type in one conversation give the same ref."""
        return self.tokenize_many(conversation_id, [(entity_type, value)])[0]

    # -- read side ------------------------------------------------------------------------

    def _find(self, conn: Connection, conversation_id: str, ref_id: str) -> _Row | None:
        query = (
            select(
                _VAL.c.ref,
                _VAL.c.entity_type,
                _VAL.c.ciphertext,
                _VAL.c.created_at,
                _CONV.c.id,
                _CONV.c.epoch,
                _CONV.c.kek_version,
                _CONV.c.wrapped_dek,
            )
            .join(_CONV, _CONV.c.id == _VAL.c.conversation_pk)
            .where(
                _CONV.c.tenant == self._tenant,
                _CONV.c.conversation_id == conversation_id,
                _VAL.c.ref == ref_id,
            )
            .order_by(_CONV.c.epoch.desc())
            .limit(1)
        )
        return conn.execute(query).first()

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
            row = self._find(conn, conversation_id, ref_id)
        if row is None:
            raise UnknownReference(ref_id)
        return RefInfo(row.ref, row.entity_type, row.created_at)

    def _read_audited(
        self,
        conversation_id: str,
        ref_id: str,
        *,
        action: str,
        actor: str,
        purpose: str,
        decide: Callable[[_Row], str | None],
        use: Callable[[str], _T],
    ) -> tuple[str, _T | None]:
        """Find, authorise (`decide` gives a refusal reason), decrypt, audit: one transaction."""
        result: _T | None = None
        with self._engine.begin() as conn:
            row = self._find(conn, conversation_id, ref_id)
            refusal = decide(row) if row is not None else None
            if refusal is not None:
                outcome = "refused:" + refusal
            elif row is None:
                outcome = "unknown"
            elif row.wrapped_dek is None:
                outcome = "shredded"
            else:
                try:
                    result = use(self._open(conn, conversation_id, row))
                    outcome = "ok"
                except DecryptionError:
                    outcome = "error"
            audit.append(
                conn,
                at=self._clock(),
                tenant=self._tenant,
                actor=actor,
                action=action,
                outcome=outcome.partition(":")[0],
                conversation_id=conversation_id,
                ref=ref_id,
                entity_type=row.entity_type if row is not None else None,
                purpose=purpose,
            )
        return outcome, result

    @staticmethod
    def _raise_for(outcome: str, ref_id: str) -> None:
        if outcome.startswith("refused:"):
            raise GrantRefused(outcome.removeprefix("refused:"))
        if outcome == "unknown":
            raise UnknownReference(ref_id)
        if outcome == "shredded":
            raise ConversationShredded(ref_id)
        if outcome == "error":
            raise DecryptionError()

    def reveal(self, conversation_id: str, ref_id: str, grant: Grant) -> str:
        """The value, if `grant` covers this conversation and type and has not expired; audited."""
        _check_conversation(conversation_id)
        _check_ref(ref_id)
        now = self._clock()

        def decide(row: _Row) -> str | None:
            if grant.conversation_id != conversation_id:
                return "conversation"
            if grant.expires_at <= now:
                return "expired"
            if row.entity_type not in grant.entity_types:
                return "entity_type"
            return None

        outcome, value = self._read_audited(
            conversation_id,
            ref_id,
            action="reveal",
            actor=grant.caller,
            purpose=grant.purpose,
            decide=decide,
            use=lambda v: v,
        )
        if outcome == "unknown" and (
            grant.conversation_id != conversation_id or grant.expires_at <= now
        ):
            raise GrantRefused(
                "conversation" if grant.conversation_id != conversation_id else "expired"
            )
        self._raise_for(outcome, ref_id)
        assert value is not None
        return value

    def check(
        self, conversation_id: str, ref_id: str, predicate: Predicate, actor: str, purpose: str
    ) -> bool:
        """Run `predicate` on the value inside the vault; only the boolean leaves; audited."""
        _check_conversation(conversation_id)
        _check_ref(ref_id)
        outcome, result = self._read_audited(
            conversation_id,
            ref_id,
            action="check",
            actor=actor,
            purpose=purpose,
            decide=lambda _row: None,
            use=predicate,
        )
        self._raise_for(outcome, ref_id)
        return bool(result)

    # -- lifecycle ------------------------------------------------------------------------

    def shred(self, conversation_id: str, actor: str) -> None:
        """Destroy the conversation's data key and ciphertexts; audited. Idempotent."""
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
                    .values(wrapped_dek=None, shredded_at=now)
                )
                conn.execute(
                    update(_VAL)
                    .where(_VAL.c.conversation_pk.in_(ids))
                    .values(ciphertext=None, blind_index=None)
                )
            audit.append(
                conn,
                at=now,
                tenant=self._tenant,
                actor=actor,
                action="shred",
                outcome="ok" if ids else "noop",
                conversation_id=conversation_id,
            )
        with self._cache_lock:
            for key in [k for k in self._cache if k[0] in ids]:
                del self._cache[key]

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
            audit.append(
                conn,
                at=self._clock(),
                tenant=self._tenant,
                actor=actor,
                action="rotate",
                outcome="ok",
                purpose=f"kek v{version}, {rewrapped} data keys re-wrapped",
            )
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
