"""The vault's tables (SQLAlchemy 2.x typed models) on a `Base` the gateway shares.

Only `stored_values.ciphertext` and the wrapped keys hold secret material, all encrypted.
`blind_index` is an HMAC under a per-conversation key, so equal values in two
conversations are unlinkable.  Shredding nulls the wrapped data key, the ciphertexts and
the blind indexes but keeps the reference rows so old references answer "shredded".
Lifecycle (docs/lifecycle.md): an epoch records when it ended and what was kept; a value
records its status (temporary, masked, retained, shredded, expired) and its expiry.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AuditHead",
    "AuditRow",
    "AuditVerification",
    "Base",
    "Conversation",
    "Kek",
    "KekBucket",
    "KeyObject",
    "StoredValue",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_ID = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Kek(Base):
    """A legacy key-encryption key version, wrapped under the master-derived key.

    Databases written before key providers hold these; the vault re-wraps their epochs
    under bucket KEKs (`KekBucket`) and then deletes the rows (docs/keys.md).
    """

    __tablename__ = "keks"
    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Float)


class KekBucket(Base):
    """A key-encryption key of one time bucket, held by the key provider (docs/keys.md).

    `record` is what the provider needs to open it (a sealed KEK for the key file and the
    environment, a pointer to a token or transit key otherwise); NULL once destroyed, the
    row stays as a tombstone.  `state`: active -> retiring (no new wraps) -> destroying ->
    destroyed.  `bucket_end` NULL: a bucket that never ends (masked values kept for good).
    """

    __tablename__ = "kek_buckets"
    __table_args__ = (UniqueConstraint("tenant", "kind", "bucket_start", "generation"),)
    kek_id: Mapped[str] = mapped_column(String(160), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    bucket_start: Mapped[float] = mapped_column(Float)
    bucket_end: Mapped[float | None] = mapped_column(Float, nullable=True)
    generation: Mapped[int] = mapped_column(Integer)
    record: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    state: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[float] = mapped_column(Float)
    destroyed_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class KeyObject(Base):
    """A service key (audit MAC, pseudonym, checkpoint, grant) sealed under the root key."""

    __tablename__ = "key_objects"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    root_id: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[float] = mapped_column(Float)


class Conversation(Base):
    """One key epoch of a conversation: its wrapped data key (NULL once shredded)."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("tenant", "conversation_id", "epoch"),)
    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64))
    conversation_id: Mapped[str] = mapped_column(String(255))
    epoch: Mapped[int] = mapped_column(Integer)
    # The bucket KEK that wraps (or last wrapped) the data key; NULL on epochs written
    # before key providers, which `kek_version` names until they are re-wrapped (then 0).
    kek_id: Mapped[str | None] = mapped_column(String(160), nullable=True, index=True)
    kek_version: Mapped[int] = mapped_column(Integer, default=0)
    wrapped_dek: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    shredded_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Lifecycle: NULL while the epoch is live; once ended, what was kept
    # ("masked" | "retained" | "shredded") and until when retained values stay.
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    end_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    retain_until: Mapped[float | None] = mapped_column(Float, nullable=True)


class StoredValue(Base):
    """A vaulted value: ref, type, blind index, ciphertext (the last two NULL once shredded)."""

    __tablename__ = "stored_values"
    __table_args__ = (
        UniqueConstraint("conversation_pk", "entity_type", "blind_index"),
        UniqueConstraint("conversation_pk", "ref"),
    )
    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    conversation_pk: Mapped[int] = mapped_column(
        _ID, ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    ref: Mapped[str] = mapped_column(String(16), index=True)
    entity_type: Mapped[str] = mapped_column(String(64))
    blind_index: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    # NULL: an ordinary live value; else temporary | masked | retained | shredded | expired.
    status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # When the value is forgotten (per-type TTL, temporary reference, retention deadline).
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)


class AuditRow(Base):
    """An append-only, chained audit record; never holds a value.

    `row_hash` is the link: HMAC-SHA256 under the audit key from row `audit_head.mac_from`
    on, plain SHA-256 before it (rows written before key providers).
    """

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float)
    tenant: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(32))
    conversation_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    ref: Mapped[str | None] = mapped_column(String(16), nullable=True)
    entity_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    purpose: Mapped[str | None] = mapped_column(String(255), nullable=True)
    outcome: Mapped[str] = mapped_column(String(32))
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))
    # Rows chained before pseudonymous conversations named a raw sender id: that id, sealed
    # under a key derived from the audit key and bound to the pseudonym now shown in
    # `conversation_id` (migration 0013); the link still covers the raw id, so verification
    # opens it. NULL on every row written since.
    sealed_conversation: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class AuditHead(Base):
    """The single chain head; locked FOR UPDATE to serialise appends across workers."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_id: Mapped[int] = mapped_column(_ID)
    last_hash: Mapped[str] = mapped_column(String(64))
    # The id of the first MAC-linked row (the `audit-format` event); NULL: SHA-256 only.
    mac_from: Mapped[int | None] = mapped_column(_ID, nullable=True)


class AuditVerification(Base):
    """One verification of the chain: good up to row `seq` (link `head`), `checked` rows
    walked this time, `first_bad` the first row that failed (None: ok).

    `mac` is HMAC-SHA256 under the audit key over the other fields, so a database writer
    cannot forge "verified up to N" (a row with a bad `mac` is ignored).
    """

    __tablename__ = "audit_verifications"
    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float)
    seq: Mapped[int] = mapped_column(_ID)
    head: Mapped[str] = mapped_column(String(64))
    checked: Mapped[int] = mapped_column(_ID)
    ok: Mapped[bool] = mapped_column(Boolean)
    first_bad: Mapped[int | None] = mapped_column(_ID, nullable=True)
    mac: Mapped[str] = mapped_column(String(64))
