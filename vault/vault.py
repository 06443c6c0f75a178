"""The vault's front: `Vault`, one tenant's vault over one engine, composed of its parts.

Envelope encryption: each conversation *epoch* has its own random data key (DEK), stored
wrapped under its time bucket's KEK, which the key provider holds (docs/keys.md); HKDF
sub-keys of the DEK seal values (AES-256-GCM, AAD = tenant, conversation, epoch,
reference, type) and key the blind index (HMAC-SHA256 of type + value), so equal values
share a reference within a conversation and are unlinkable across conversations.

Why a front over parts: the vault used to be one class of 52 methods mixing SQL building,
the key cache, access decisions, lifecycle and rotation.  Each concern now has its own
module; this class decides nothing of its own: it wires the parts together and is the
one public surface (the contract is in docs/contracts.md):

- `_tokens.py`     tokenize (fast and locking paths), temporary references
- `_reads.py`      lookup, reveal under a grant or a policy, checks (audited)
- `_access.py`     the access decisions those reads make, as `Outcome`s (`outcomes.py`)
- `_retention.py`  shred, end under the retention policy, expiry, holdings
- `_rotation.py`   KEK rotation, root rotation and provider migration
- `_keks.py`       bucket KEKs from the key provider; `_keycache.py` unwrapped keys, hints
- `_upkeep.py`     moving data keys between buckets, destroying KEKs, settling the files
- `_subjects.py`   pseudonyms, a person's erasure and export
- `_pseudonyms.py` migration 0010's online step: raw-id conversations moved to pseudonyms
- `_servicekeys.py` the sealed service keys' table (audit MAC, pseudonym, checkpoint, grant)
- `_statements.py` the hot statements, built once; `_driver.py` runs them on the cursor
- `_chain.py`      the MAC-linked audit chain, its verification; `_storage.py` what the parts share
- `_transaction.py` `Transaction`, the handle callers get instead of a connection
- `_crypto.py`     the only module that touches cryptographic primitives
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import Engine

from coatcheck.vault import _chain
from coatcheck.vault._arguments import require
from coatcheck.vault._keks import KEK_NOT_VISIBLE, LIVE, Keks
from coatcheck.vault._keycache import KeyCache
from coatcheck.vault._pseudonyms import AuditIds, LegacyRows, PseudonymMigration
from coatcheck.vault._reads import Reader, RefInfo
from coatcheck.vault._retention import Retainer
from coatcheck.vault._rotation import RootRotation, Rotator
from coatcheck.vault._servicekeys import DbKeyStore
from coatcheck.vault._storage import Storage
from coatcheck.vault._subjects import ErasureHook, Subjects
from coatcheck.vault._tokens import Then, Tokenizer
from coatcheck.vault._transaction import Transaction
from coatcheck.vault._upkeep import Upkeep
from coatcheck.vault.audit import AuditRecord, AuditReport
from coatcheck.vault.db import read_transaction
from coatcheck.vault.grants import Grant
from coatcheck.vault.keys.checkpoint import Checkpoint, CheckpointSigner
from coatcheck.vault.keys.errors import ProviderUnavailable
from coatcheck.vault.keys.host import EnvKeyProvider
from coatcheck.vault.keys.provider import KeyProvider
from coatcheck.vault.keys.service_keys import AUDIT_MAC, ServiceKeys
from coatcheck.vault.lifecycle import (
    EndSummary,
    ErasureSummary,
    ExpirySummary,
    Holdings,
    Policies,
    SubjectValue,
    UpkeepSummary,
    ValueState,
)
from coatcheck.vault.outcomes import Outcome
from coatcheck.vault.predicates import Predicate

__all__ = ["RefInfo", "RootRotation", "Vault"]

DAY = 86_400.0


class Vault:
    """One tenant's vault over one engine; thread-safe; clock injected for expiry and audit.

    `keys` is the key provider (docs/keys.md) or, for tests and tools, raw master-key
    bytes (a host provider like `COATCHECK_MASTER_KEY`'s).  The caller owns the provider
    (closes it) unless `owns`: then `close()` closes it and disposes of the engine
    (`open_vault`).  `bucket_seconds`: the KEK bucket length (a UTC day); `grace_seconds`:
    how long after its bucket ended a KEK is destroyed (the shredding bound's slack).
    """

    def __init__(
        self,
        engine: Engine,
        keys: bytes | KeyProvider,
        tenant: str = "default",
        clock: Callable[[], float] = time.time,
        *,
        cache_size: int = 4096,
        max_retries: int = 20,
        policies: Policies | None = None,
        bucket_seconds: float = DAY,
        grace_seconds: float = 3600.0,
        owns: bool = False,
    ) -> None:
        require("tenant", isinstance(tenant, str) and 0 < len(tenant) <= 64)
        require("bucket_seconds", bucket_seconds >= 60)
        require("grace_seconds", grace_seconds >= 0)
        self._policies = policies if policies is not None else Policies()
        if not isinstance(keys, KeyProvider):
            keys = EnvKeyProvider(base64.b64encode(keys).decode("ascii"))
        self._provider = keys
        self._owns = owns
        self._storage = storage = Storage(engine, tenant, clock, max_retries)
        keks = Keks(storage, keys, bucket_seconds)
        cache = KeyCache(keks, cache_size)
        self._tokens = Tokenizer(storage, keks, cache, self._policies)
        self._reads = Reader(storage, cache)
        self._retention = Retainer(storage, cache, self._policies)
        self._upkeep = Upkeep(storage, keks, cache, grace_seconds)
        keks.check_legacy()  # before anything is sealed under this root
        store = DbKeyStore(engine, clock)
        self._bind_audit(store)
        self._service = service = ServiceKeys(keys, store)
        self._grant_key = service.grant_key
        self._signer = service.checkpoint_signer
        self._subjects = Subjects(
            storage, cache, self._retention, self._upkeep, service.pseudonym_key
        )
        self._rotation = Rotator(storage, keks, self._upkeep, service)
        self._migration = PseudonymMigration(
            storage, keks, cache, self._upkeep, self._subjects.pseudonym, self._policies.ttl_for
        )
        self._audit_ids = AuditIds(storage, self._subjects.pseudonym)
        try:  # today's KEK now, not on the first message's path
            keks.current(LIVE, clock())
        except ProviderUnavailable as exc:
            if exc.cause != KEK_NOT_VISIBLE:
                raise  # the provider is down: a start-up error
            # a young KEK row whose key the provider lacks: the first message decides

    def _bind_audit(self, store: DbKeyStore) -> None:
        """Load (or make) the audit key and switch the chain to MACs once (`_chain.py`)."""
        storage, provider = self._storage, self._provider
        at = storage.clock()
        purpose = "links are HMAC-SHA256 under the audit key from this row on"
        entry = _chain.Entry(
            at, storage.tenant, "vault", _chain.FORMAT_ACTION, "ok", purpose=purpose
        )
        with storage.engine.begin() as conn:
            here = store.within(conn)

            def load() -> tuple[bytes, bool]:
                created = here.get(AUDIT_MAC) is None
                return ServiceKeys(provider, here).audit_mac_key, created

            storage.chain.bind(conn, load, entry)

    def close(self) -> None:
        """Release the provider and the engine if this vault opened them (`open_vault`)."""
        if self._owns:
            self._owns = False
            self._provider.close()
            self._storage.engine.dispose()

    def __repr__(self) -> str:
        storage = self._storage
        return (
            f"Vault(tenant={storage.tenant!r}, dialect={storage.engine.dialect.name!r}, "
            f"root={self._provider.root_id!r})"
        )

    @property
    def provider(self) -> KeyProvider:
        """The key provider the vault runs on (its `root_id`, `destroy_is_final`)."""
        return self._provider

    @property
    def grant_key(self) -> bytes:
        """Key of grant tokens and viewer sessions: a sealed service key, stable across
        root rotations and provider migrations."""
        return self._grant_key

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
        for bigger batches on PostgreSQL), plus a SELECT only for values stored before
        that this worker has not seen stored (a value without expiry that it stored or
        found in the live epoch is remembered with the epoch's keys: it costs an HMAC, and
        one liveness check when nothing else in the batch is new).  Anything unexpected
        falls back to the locking slow path.

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
        self,
        conversation_id: str,
        ref_id: str,
        predicate: Predicate,
        actor: str,
        purpose: str,
        *,
        entity_type: str | None = None,
    ) -> bool:
        """Run `predicate` on the value inside the vault; only the boolean leaves; audited.

        Like grants, checks reach only values of a live conversation (`ConversationEnded`).
        With `entity_type`, a value stored under another type is an unknown reference (a
        check declared for one type never runs on another).
        """
        return self._reads.check(conversation_id, ref_id, predicate, actor, purpose, entity_type)

    # -- retention ------------------------------------------------------------------------

    def shred(self, conversation_id: str, actor: str) -> None:
        """Destroy the conversation's data key and ciphertexts now, whatever the policy.

        Audited; idempotent.  Every epoch is shredded and marked ended; the live files are
        settled at once (SQLite: the WAL is checkpointed and truncated).
        """
        self._retention.shred(conversation_id, actor)
        self._upkeep.settle()

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

    def settle(self) -> bool:
        """Make the shreds committed so far final in the live database files (docs/keys.md).

        SQLite: a TRUNCATE checkpoint of the WAL, so no WAL frame keeps a page from before
        a shred (secure_delete zeroes freed cells); PostgreSQL: `kek_buckets` rewritten
        after host-held KEK records were erased.  Cheap when nothing is owed; the vault's
        own shreds settle themselves, a caller that ended conversations in its own
        transaction (`end(tx=...)`) calls it after the commit.  False: a reader or a lock
        was in the way; the next call (the sweeper's `maintain`) retries.
        """
        return self._upkeep.settle()

    # -- keys -----------------------------------------------------------------------------

    def maintain(self, actor: str = "sweeper", *, limit: int = 500) -> UpkeepSummary:
        """One key-maintenance pass (every sweep): move data keys out of ending buckets,
        re-wrap pre-provider epochs, destroy KEKs nothing needs, settle the files."""
        require("limit", isinstance(limit, int) and limit > 0)
        return self._upkeep.run(actor, limit)

    def rotate(self, actor: str, batch: int = 500) -> UpkeepSummary:
        """Fresh KEKs for every data key, online: every active KEK is retired (its data keys
        re-wrapped under a new generation of the same bucket, then destroyed)."""
        require("batch", isinstance(batch, int) and batch > 0)
        return self._rotation.rotate(actor, batch)

    def rotate_root(self, actor: str) -> RootRotation:
        """Move everything sealed under an older root of a `ProviderChain` to its primary
        (root rotation, key file -> PKCS#11); `left == 0` when the old root may go."""
        return self._rotation.rotate_root(actor)

    # -- a person's data --------------------------------------------------------------------

    def pseudonym(self, sender_id: str) -> str:
        """The pseudonym of a channel's sender id: `p_` + 26 characters of `[a-z2-7]`.

        HMAC-SHA256 under the sealed pseudonym key over (tenant, sender id), base32: URL
        safe, fits every conversation-id column, never shaped like a phone number or an
        e-mail address, the same across root rotations and provider migrations.
        """
        return self._subjects.pseudonym(sender_id)

    def migrate_pseudonyms(
        self,
        rows: LegacyRows | None = None,
        actor: str = "vault",
        *,
        sender_type: str | None = None,
    ) -> int:
        """Move every conversation stored under a raw id to its pseudonym (migration 0010's
        online step; how many moved): data keys re-wrapped and values re-sealed bound to the
        pseudonym (same references), `rows` (the caller's own tables) renamed in the same
        transaction, one transaction per conversation, ONE `migrate` audit event (purpose
        `pseudonyms:<count>`) for the whole migration.  With `sender_type`, the raw id is
        vaulted as that type in a conversation still live (as the channel's live path
        does).  Idempotent; a rerun after a crash finishes the rest.  Then migration 0013's
        step: audit rows chained with a raw id show the pseudonym, the raw id sealed beside
        them for verification (one `migrate` event, purpose `audit-ids:<count>`;
        docs/keys.md, "Pseudonyms")."""
        moved = self._migration.run(actor, rows, sender_type)
        sealed = self._audit_ids.run(actor)
        if moved or sealed:
            self._upkeep.settle()  # the renamed rows' old versions leave the WAL (SQLite)
        return moved

    def subject_erase(
        self, sender_id: str, actor: str, *, then: ErasureHook | None = None
    ) -> ErasureSummary:
        """Shred every conversation of one person (found under `pseudonym(sender_id)`, and
        under the raw id for conversations stored before pseudonyms) and destroy every KEK
        that wrapped one of them; audited under the pseudonym.

        `then(tx, ids)`: the caller's own rows of those ids (the pseudonym, the raw id),
        removed in the summary audit row's transaction; its answer (counts, no value) is
        added to that row's purpose."""
        return self._subjects.erase(sender_id, actor, then)

    def subject_export(self, sender_id: str, actor: str) -> list[SubjectValue]:
        """Every value still held for one person (live, masked or retained), each audited
        (`subject_export`, purpose `subject_access`); for that person only."""
        return self._subjects.export(sender_id, actor)

    # -- audit ----------------------------------------------------------------------------

    def verify_audit(
        self, *, full: bool = False, checkpoints: Sequence[Checkpoint] = ()
    ) -> AuditReport:
        """Verify the chain without the write lock and record the result (docs/keys.md).

        Incremental from the newest good verification unless `full`; with `checkpoints`
        (already signature-checked: `verify_checkpoint`) from row 1, and each checkpoint's
        row must still carry its head.
        """
        storage = self._storage
        key = storage.chain.key
        return _chain.verify(storage.engine, key, storage.clock, full=full, checkpoints=checkpoints)

    def audit_status(self) -> AuditReport | None:
        """The newest recorded verification (what the viewer shows); None before any."""
        with read_transaction(self._storage.engine) as conn:
            return _chain.latest_report(conn, self._storage.chain.key)

    @property
    def checkpoint_signer(self) -> CheckpointSigner:
        """Signs audit checkpoints; `.public_key` is what an operator pins."""
        return self._signer

    def audit_checkpoint(self) -> str:
        """The chain's head now, signed: one JSON line for the operator to keep elsewhere."""
        with read_transaction(self._storage.engine) as conn:
            head = _chain.read_head(conn)
        return self._signer.sign(Checkpoint(head.last_id, head.last_hash, self._storage.clock()))

    def audit_rows(
        self,
        *,
        conversation_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 1000,
    ) -> list[AuditRecord]:
        """Audit records, newest first, filtered by any of conversation, actor, action."""
        with read_transaction(self._storage.engine) as conn:
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

    def audit_access(
        self, *, actor: str, action: str, conversation_id: str, purpose: str | None = None
    ) -> None:
        """Audit a request the caller served itself (`/v1/redact` into a conversation):
        outcome `ok`, the purpose saying how it was answered; never a value."""
        storage = self._storage
        entry = _chain.Entry(
            storage.clock(),
            storage.tenant,
            actor[:255],
            action,
            Outcome.OK.audit_text(),
            conversation_id[:255],
            None,
            None,
            purpose[:255] if purpose else None,
        )
        with storage.engine.begin() as conn:
            storage.chain.append(conn, [entry])
