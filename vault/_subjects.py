"""A person's data on request: pseudonyms, erasure and export of one sender's conversations.

The channel's sender id is itself personal (a phone number, an e-mail address): the edge
stores `pseudonym(sender)` instead (docs/keys.md, "Pseudonyms"), an HMAC under the sealed
pseudonym key, so a database reader learns nothing from it, while the operator who is
given the real id finds the person's conversations by hashing it the same way.  The key
is a sealed service key: the same across root rotations and provider migrations.

Until every edge stores pseudonyms, conversations may still be keyed by the raw sender id:
`subject_erase` / `subject_export` look under both (the raw id is the legacy form, kept
only while such conversations exist), and audit under the pseudonym, never the raw id.

Erasure is final as far as the provider's destroy reaches: every epoch is shredded, then
every KEK that wrapped one of them is retired (its other data keys move to a new KEK, the
old one is destroyed) so a copy of the database from before opens nothing of the person's
(PKCS#11, transit; docs/keys.md states the host providers' bound).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

from sqlalchemy import Connection, select

from coatcheck.vault import _crypto
from coatcheck.vault._arguments import check_conversation
from coatcheck.vault._chain import Entry
from coatcheck.vault._keycache import KeyCache, value_aad
from coatcheck.vault._retention import Retainer
from coatcheck.vault._statements import CONV, VAL
from coatcheck.vault._storage import Storage
from coatcheck.vault._transaction import Transaction
from coatcheck.vault._upkeep import Upkeep
from coatcheck.vault.errors import DecryptionError
from coatcheck.vault.keys.errors import KeyDestroyed
from coatcheck.vault.lifecycle import ErasureSummary, SubjectValue
from coatcheck.vault.outcomes import Outcome

__all__ = ["PSEUDONYM_RE", "ErasureHook", "Subjects"]

PSEUDONYM_RE = re.compile(r"p_[a-z2-7]{26}")
"""A pseudonym: `p_` and 26 lower-case base32 characters (130 bits of the HMAC)."""

ErasureHook = Callable[[Transaction, tuple[str, ...]], str | None]
"""`then(tx, ids)` of `subject_erase`: the caller's own rows of the person's conversation
ids (the pseudonym, and the raw id), removed in the transaction of the erasure's summary
audit row; what it returns (counts, never a value) is added to that row's purpose."""


class Subjects:
    """pseudonym, subject_erase and subject_export over one `Storage`."""

    __slots__ = ("_key", "_keys", "_retention", "_storage", "_upkeep")

    def __init__(
        self,
        storage: Storage,
        keys: KeyCache,
        retention: Retainer,
        upkeep: Upkeep,
        pseudonym_key: bytes,
    ) -> None:
        self._storage = storage
        self._keys = keys
        self._retention = retention
        self._upkeep = upkeep
        self._key = pseudonym_key

    def pseudonym(self, sender_id: str) -> str:
        check_conversation(sender_id)
        digest = _crypto.hmac_sha256(
            self._key, _crypto.aad("sender", self._storage.tenant, sender_id)
        )
        return "p_" + base64.b32encode(digest).decode("ascii").lower()[:26]

    def _candidates(self, sender_id: str) -> tuple[str, ...]:
        """The ids a sender's conversations may be stored under: the pseudonym first, then
        the raw id (the legacy form, until every edge stores pseudonyms)."""
        pseudonym = self.pseudonym(sender_id)
        return (pseudonym,) if sender_id == pseudonym else (pseudonym, sender_id)

    def _conversations(self, sender_id: str) -> tuple[str, list[str]]:
        """(the pseudonym, the conversation ids the vault holds for the sender)."""
        candidates = self._candidates(sender_id)
        pseudonym = candidates[0]
        with self._storage.engine.begin() as conn:
            found = conn.execute(
                select(CONV.c.conversation_id)
                .where(
                    CONV.c.tenant == self._storage.tenant,
                    CONV.c.conversation_id.in_(candidates),
                )
                .distinct()
            ).scalars()
            return pseudonym, sorted(found)

    def erase(self, sender_id: str, actor: str, then: ErasureHook | None = None) -> ErasureSummary:
        pseudonym, found = self._conversations(sender_id)
        epochs, kek_ids = 0, set[str]()
        for conversation_id in found:
            shredded, used = self._retention.shred(conversation_id, actor, "subject_erase")
            epochs += shredded
            kek_ids.update(used)
        destroyed, _, final = self._upkeep.retire(kek_ids, actor)
        purpose = f"{len(found)} conversations"
        ids = self._candidates(sender_id)
        with self._storage.engine.begin() as conn:
            extra = then(Transaction(conn), ids) if then is not None else None
            if extra:
                purpose = f"{purpose}; {extra}"[:255]
            self._append(conn, actor, "subject_erase", pseudonym, purpose)
        return ErasureSummary(len(found), epochs, destroyed, final and bool(found))

    def export(self, sender_id: str, actor: str) -> list[SubjectValue]:
        pseudonym, found = self._conversations(sender_id)
        storage = self._storage
        now = storage.clock()
        values: list[SubjectValue] = []
        entries: list[Entry] = []
        with storage.engine.begin() as conn:
            rows = conn.execute(
                select(
                    CONV.c.id,
                    CONV.c.conversation_id,
                    CONV.c.epoch,
                    CONV.c.kek_id,
                    CONV.c.kek_version,
                    CONV.c.wrapped_dek,
                    VAL.c.ref,
                    VAL.c.entity_type,
                    VAL.c.ciphertext,
                    VAL.c.created_at,
                    VAL.c.status,
                )
                .join(VAL, VAL.c.conversation_pk == CONV.c.id)
                .where(
                    CONV.c.tenant == storage.tenant,
                    CONV.c.conversation_id.in_(found),
                    CONV.c.wrapped_dek.is_not(None),
                    VAL.c.ciphertext.is_not(None),
                    (VAL.c.expires_at.is_(None)) | (VAL.c.expires_at > now),
                )
                .order_by(CONV.c.conversation_id, CONV.c.epoch, VAL.c.created_at, VAL.c.ref)
            ).all()
            for row in rows:
                cid = row.conversation_id
                try:
                    keys = self._keys.open(conn, row, cid)
                    aad = value_aad(storage.tenant, cid, row.epoch, row.ref, row.entity_type)
                    value = keys.sealer.open(row.ciphertext, aad).decode("utf-8")
                    outcome = Outcome.OK
                except (DecryptionError, KeyDestroyed) as exc:
                    value = None
                    outcome = Outcome.SHREDDED if isinstance(exc, KeyDestroyed) else Outcome.ERROR
                text = outcome.audit_text()
                entries.append(
                    Entry(
                        now,
                        storage.tenant,
                        actor,
                        "subject_export",
                        text,
                        cid,
                        row.ref,
                        row.entity_type,
                        "subject_access",
                    )
                )
                if value is not None:
                    values.append(
                        SubjectValue(
                            cid, row.ref, row.entity_type, row.created_at, row.status, value
                        )
                    )
            outcome = Outcome.OK if found else Outcome.NOOP
            entries.append(
                Entry(
                    now,
                    storage.tenant,
                    actor,
                    "subject_export",
                    outcome.audit_text(),
                    pseudonym,
                    purpose=f"{len(values)} values",
                )
            )
            storage.chain.append(conn, entries)
        return values

    def _append(
        self, conn: Connection, actor: str, action: str, pseudonym: str, purpose: str
    ) -> None:
        """One summary row under the pseudonym, last in the caller's transaction (the audit
        head is always a transaction's last lock)."""
        storage = self._storage
        entry = Entry(
            storage.clock(),
            storage.tenant,
            actor,
            action,
            Outcome.OK.audit_text(),
            pseudonym,
            purpose=purpose,
        )
        storage.chain.append(conn, [entry])
