"""The vault: KEKs, conversation data keys, vaulted values, hash-chained audit log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "keks",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "version", name="pk_keks"),
    )
    op.create_table(
        "conversations",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("kek_version", sa.Integer(), nullable=False),
        sa.Column("wrapped_dek", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("shredded_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
        sa.UniqueConstraint(
            "tenant",
            "conversation_id",
            "epoch",
            name="uq_conversations_tenant_conversation_id_epoch",
        ),
    )
    op.create_table(
        "stored_values",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("conversation_pk", _ID, nullable=False),
        sa.Column("ref", sa.String(16), nullable=False),
        sa.Column("entity_type", sa.String(64), nullable=False),
        sa.Column("blind_index", sa.LargeBinary(), nullable=True),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stored_values"),
        sa.ForeignKeyConstraint(
            ["conversation_pk"],
            ["conversations.id"],
            name="fk_stored_values_conversation_pk_conversations",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "conversation_pk",
            "entity_type",
            "blind_index",
            name="uq_stored_values_conversation_pk_entity_type_blind_index",
        ),
        sa.UniqueConstraint("conversation_pk", "ref", name="uq_stored_values_conversation_pk_ref"),
    )
    op.create_index("ix_stored_values_conversation_pk", "stored_values", ["conversation_pk"])
    op.create_index("ix_stored_values_ref", "stored_values", ["ref"])
    op.create_table(
        "audit_log",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("conversation_id", sa.String(255), nullable=True),
        sa.Column("ref", sa.String(16), nullable=True),
        sa.Column("entity_type", sa.String(64), nullable=True),
        sa.Column("purpose", sa.String(255), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("last_id", _ID, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    op.bulk_insert(
        sa.table("audit_head", sa.column("id"), sa.column("last_id"), sa.column("last_hash")),
        [{"id": 1, "last_id": 0, "last_hash": "0" * 64}],
    )


def downgrade() -> None:
    for table in ("audit_head", "audit_log", "stored_values", "conversations", "keks"):
        op.drop_table(table)
