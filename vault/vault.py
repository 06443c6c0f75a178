"""The vault's front: `Vault`, one tenant's vault over one engine, composed of its parts.

Envelope encryption: each conversation *epoch* has its own random data key (DEK), stored
wrapped under the newest KEK; HKDF sub-keys of the DEK seal values (AES-256-GCM, AAD =
tenant, conversation, epoch, reference, type) and key the blind index (HMAC-SHA256 of
type + value), so equal values share a reference within a conversation and are unlinkable
across conversations.

Why a front over parts: the vault used to be one class of 52 methods mixing SQL building,
the key cache, access decisions, lifecycle and rotation.  Each concern now has its own
module; this class decides nothing of its own: it wires the parts together and is the
one public surface (the contract is in docs/contracts.md):

- `_tokens.py`     tokenize (fast and locking paths), temporary references
- `_reads.py`      lookup, reveal under a grant or a policy, checks (audited)
- `_access.py`     the access decisions those reads make, as `Outcome`s (`outcomes.py`)
- `_retention.py`  shred, end under the retention policy, expiry, holdings
- `_rotation.py`   KEK rotation and re-wrapping
- `_keks.py`       the KEK table and the key ring; `_keycache.py` unwrapped keys, hints
- `_statements.py` the hot statements, built once; `_driver.py` runs them on the cursor
- `_chain.py`      the audit hash chain; `_storage.py` what the parts share
- `_transaction.py` `Transaction`, the handle callers get instead of a connection
- `_crypto.py`     the only module that touches cryptographic primitives
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import Engine

from coatcheck.vault import _chain
from coatcheck.vault._arguments import require
from coatcheck.vault._keks import Keks
from coatcheck.vault._keycache import KeyCache
from coatcheck.vault._reads import Reader, RefInfo
from coatcheck.vault._retention import Retainer
from coatcheck.vault._rotation import Rotator
from coatcheck.vault._storage import Storage
from coatcheck.vault._tokens import Then, Tokenizer
from coatcheck.vault._transaction import Transaction
from coatcheck.vault.audit import AuditRecord, AuditReport
from coatcheck.vault.grants import Grant
from coatcheck.vault.keyring import KeyRing
from coatcheck.vault.lifecycle import EndSummary, ExpirySummary, Holdings, Policies, ValueState
from coatcheck.vault.outcomes import Outcome
from coatcheck.vault.predicates import Predicate

__all__ = ["RefInfo", "Vault"]


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
        require("tenant", isinstance(tenant, str) and 0 < len(tenant) <= 64)
        self._policies = policies if policies is not None else Policies()
        self._keyring = master_key if isinstance(master_key, KeyRing) else KeyRing(master_key)
        self._storage = storage = Storage(engine, tenant, clock, max_retries)
        keks = Keks(storage, self._keyring)
        keys = KeyCache(keks, cache_size)
        self._tokens = Tokenizer(storage, keks, keys, self._policies)
        self._reads = Reader(storage, keys)
        self._retention = Retainer(storage, keys, self._policies)
        self._rotation = Rotator(storage, keks)
        storage.retry("kek", keks.ensure)
        keks.sync()

    def __repr__(self) -> str:
        storage = self._storage
        return f"Vault(tenant={storage.tenant!r}, dialect={storage.engine.dialect.name!r})"

    @property
    def keyring(self) -> KeyRing:
        return self._keyring

    @property
    def policies(self) -> Policies:
        """Per-type retention and TTL (docs/lifecycle.md)."""
        return self._policies

    # -- tokens ---------------------------------------------------------------------------

    def tokenize_many(
        self,
        conversation_id: str,
        items: Iterable[tuple[str, str]],
        *,
        then: Then | None = None,
    ) -> list[str]:
        """Vault every value in ONE transaction (all or none); returns bare reference ids.

        Fast path (epoch cached here): the liveness check of the cached epoch rides in each
        INSERT ... ON CONFLICT DO NOTHING RETURNING (or one check and one multi-row INSERT
        for bigger batches on PostgreSQL), plus a SELECT only for values stored before.
        Anything unexpected falls back to the locking slow path.

        `then(tx, refs)` runs last inside the same transaction, so a caller can commit its
        own rows together with the values through the `Transaction` (the gateway's history
        line: one durable write instead of two).  If it raises, the values are rolled back
        too; it may run more than once (a retried or stale-path transaction), each time in
        a fresh transaction.
        """
        return self._tokens.tokenize_many(conversation_id, items, then)

    def tokenize(self, conversation_id: str, entity_type: str, value: str) -> str:
        """Vault one value; the same value and type in one conversation give the same ref."""
        return self._tokens.tokenize_many(conversation_id, [(entity_type, value)], None)[0]

    def tokenize_temporary(
        self, conversation_id: str, entity_type: str, value: str, ttl_seconds: float | None
    ) -> tuple[str, float | None]:
        """Vault a value under a fresh, single-use reference; returns (ref, expires_at).

        Never deduplicated (no blind index), forgotten after `ttl_seconds` (capped by the
        type's TTL; None = no limit of its own) and always destroyed when the conversation
        ends, whatever the type's retention.
        """
        return self._tokens.tokenize_temporary(conversation_id, entity_type, value, ttl_seconds)

    # -- reads ----------------------------------------------------------------------------

    def lookup(self, conversation_id: str, ref_id: str) -> RefInfo:
        """Type and creation time of a reference; no value, no audit."""
        return self._reads.lookup(conversation_id, ref_id)

    def reveal(self, conversation_id: str, ref_id: str, grant: Grant) -> str:
        """The value, if `grant` covers this conversation and type and has not expired; audited."""
        return self._reads.reveal_many(conversation_id, [ref_id], grant)[0]

    def reveal_many(self, conversation_id: str, ref_ids: Sequence[str], grant: Grant) -> list[str]:
        """Several values under one grant in one transaction, each reveal audited.

        All or nothing: if any reference is refused, unknown, shredded or fails to open, no
        value is returned, the failing references are audited, and the first failure raises.
        A value whose conversation has ended is refused (`ConversationEnded`): grants are
        for live conversations only.
        """
        return self._reads.reveal_many(conversation_id, ref_ids, grant)

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
        return self._reads.reveal_for(
            conversation_id, ref_id, actor=actor, purpose=purpose, policy=policy
        )

    def check(
        self, conversation_id: str, ref_id: str, predicate: Predicate, actor: str, purpose: str
    ) -> bool:
        """Run `predicate` on the value inside the vault; only the boolean leaves; audited.

        Like grants, checks reach only values of a live conversation (`ConversationEnded`).
        """
        return self._reads.check(conversation_id, ref_id, predicate, actor, purpose)

    # -- retention ------------------------------------------------------------------------

    def shred(self, conversation_id: str, actor: str) -> None:
        """Destroy the conversation's data key and ciphertexts now, whatever the policy.

        Audited; idempotent.  Every epoch is shredded and marked ended.
        """
        self._retention.shred(conversation_id, actor)

    def end(
        self,
        conversation_id: str,
        actor: str,
        reason: str,
        *,
        tx: Transaction | None = None,
    ) -> EndSummary:
        """End every epoch of the conversation that has not ended, under the retention policy.

        Per value (docs/lifecycle.md): temporary values, values past their TTL and values of
        `shred` types are destroyed (ciphertext and blind index nulled); `mask` types are
        kept as `masked`; `retain` types as `retained` until now + the type's period (or
        their TTL, if sooner).  An epoch left with nothing kept has its data key shredded at
        once.  Kept values lose their blind index: an ended epoch never takes values again,
        the next tokenize opens a new epoch.  One `end` audit row (outcome `shredded`,
        `masked`, `retained` or `noop`, purpose = `reason`).

        With `tx`, runs inside the caller's transaction (the gateway ends its own state
        in the same commit); the epoch rows are locked FOR UPDATE before any value.
        """
        return self._retention.end(conversation_id, actor, reason, tx)

    def expire_due(
        self, actor: str = "sweeper", *, limit: int = 500, tx: Transaction | None = None
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
        forgotten); with `tx`, inside the caller's transaction.
        """
        return self._retention.expire_due(actor, limit, tx)

    def holdings(self, conversation_id: str, *, tx: Transaction | None = None) -> Holdings:
        """What the vault holds for the conversation id over all epochs (no values);
        with `tx`, read in the caller's transaction (e.g. on a lock-free read engine)."""
        return self._retention.holdings(conversation_id, tx)

    # -- keys -----------------------------------------------------------------------------

    def rotate(self, actor: str, batch: int = 500) -> int:
        """Add a KEK version and re-wrap every live data key under it, in batches, online."""
        return self._rotation.rotate(actor, batch)

    # -- audit ----------------------------------------------------------------------------

    def verify_audit(self) -> AuditReport:
        """Walk the whole hash chain; the first row whose link or hash is wrong."""
        with self._storage.engine.begin() as conn:
            return _chain.verify(conn)

    def audit_rows(
        self,
        *,
        conversation_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 1000,
    ) -> list[AuditRecord]:
        """Audit records, newest first, filtered by any of conversation, actor, action."""
        with self._storage.engine.begin() as conn:
            return _chain.list_rows(
                conn, conversation_id=conversation_id, actor=actor, action=action, limit=limit
            )

    def audit_refusal(
        self,
        *,
        actor: str,
        action: str,
        reason: str,
        conversation_id: str | None = None,
        ref: str | None = None,
        entity_type: str | None = None,
    ) -> None:
        """Audit a refusal decided before the vault (a key of the wrong role, a missing or
        forged grant), in a transaction of its own: outcome `refused:<reason>`.

        The only way for a caller to add to the chain, so every row is one the vault
        wrote; actor and conversation id are cut to their columns' 255 characters.
        """
        storage = self._storage
        entry = _chain.Entry(
            storage.clock(),
            storage.tenant,
            actor[:255],
            action,
            Outcome.REFUSED.audit_text(reason, detailed=True),
            conversation_id[:255] if conversation_id else None,
            ref,
            entity_type,
        )
        with storage.engine.begin() as conn:
            storage.chain.append(conn, [entry])
