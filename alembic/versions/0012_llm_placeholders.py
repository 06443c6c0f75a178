"""The LLM gateway's placeholders: per conversation and label, a number for a reference.

Revision ID: 0012
Revises: 0011

Issue 17 (docs/llm.md, "The placeholder table").  `llm_placeholders` maps
(tenant, conversation, label, n) to the vault's bare reference id, unique both ways, so
concurrent requests on any number of workers agree on `[EMAIL_1]`; `llm_placeholder_counters`
holds the last number per (conversation, label).  References only, never a value; the rows
go with the conversation's erasure.
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "llm_placeholders",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("ref_id", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant", "conversation_id", "label", "n", name="pk_llm_placeholders"
        ),
        sa.UniqueConstraint(
            "tenant",
            "conversation_id",
            "ref_id",
            name="uq_llm_placeholders_tenant_conversation_id_ref_id",
        ),
        sa.CheckConstraint("n >= 1", name="ck_llm_placeholders_n_positive"),
    )
    op.create_table(
        "llm_placeholder_counters",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("last_n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant", "conversation_id", "label", name="pk_llm_placeholder_counters"
        ),
    )


def downgrade() -> None:
    op.drop_table("llm_placeholder_counters")
    op.drop_table("llm_placeholders")
