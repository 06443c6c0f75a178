"""At rest: bucket KEKs held by the key provider, sealed service keys, a MAC-linked audit chain.

Revision ID: 0007
Revises: 0006

Issue 15 (docs/keys.md).  Schema only: the key work needs the root key, which a migration
does not have, so the vault does it online once it runs with a key provider:

- `kek_buckets` (one KEK per tenant, kind and time bucket; `record` NULL once destroyed);
  `conversations.kek_id` (the bucket KEK of an epoch) beside the legacy `kek_version`
  (0 on epochs under a bucket KEK).  Epochs written before keep opening through the
  legacy `keks` rows until the vault's maintenance pass re-wraps them under bucket KEKs
  (`Vault.maintain`), then deletes the legacy rows.  No value is lost and none is
  re-encrypted: only data keys are re-wrapped.
- `key_objects`: the sealed audit-MAC, pseudonym, checkpoint and grant keys.
- `audit_head.mac_from`: NULL until the first vault with an audit key appends the one
  `audit-format` event; from that row on every link is an HMAC, rows before it stay SHA-256
  links, which the verifier accepts for them (the first MAC row binds their last hash).
- `audit_verifications`: results of (incremental) chain verifications, each MAC'd.

Plain `ADD COLUMN` / `DROP COLUMN`, never a batch table copy: on SQLite a copy drops the
old `conversations` table, and with foreign keys on that DROP cascades to every stored
value.  Downgrade drops all of it: epochs wrapped under bucket KEKs no longer open
afterwards (a downgrade is for development, not for a database holding values).
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "kek_buckets",
        sa.Column("kek_id", sa.String(160), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("bucket_start", sa.Float(), nullable=False),
        sa.Column("bucket_end", sa.Float(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("record", sa.LargeBinary(), nullable=True),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("destroyed_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("kek_id", name="pk_kek_buckets"),
        sa.UniqueConstraint(
            "tenant",
            "kind",
            "bucket_start",
            "generation",
            name="uq_kek_buckets_tenant_kind_bucket_start_generation",
        ),
    )
    op.create_table(
        "key_objects",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("root_id", sa.String(128), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_key_objects"),
    )
    op.create_table(
        "audit_verifications",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("seq", _ID, nullable=False),
        sa.Column("head", sa.String(64), nullable=False),
        sa.Column("checked", _ID, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("first_bad", _ID, nullable=True),
        sa.Column("mac", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_verifications"),
    )
    op.add_column("conversations", sa.Column("kek_id", sa.String(160), nullable=True))
    op.create_index("ix_conversations_kek_id", "conversations", ["kek_id"])
    op.add_column("audit_head", sa.Column("mac_from", _ID, nullable=True))


def downgrade() -> None:
    op.drop_column("audit_head", "mac_from")
    op.drop_index("ix_conversations_kek_id", table_name="conversations")
    op.drop_column("conversations", "kek_id")
    op.drop_table("audit_verifications")
    op.drop_table("key_objects")
    op.drop_table("kek_buckets")
