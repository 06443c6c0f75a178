"""The export outbox and the webhook's message ids (issue 19).

`gw_export_outbox`: one row per (ended conversation, sink), written in the end's own
transaction and drained by each worker's outbox task (retries with backoff, dead letters),
so a slow sink no longer holds the database limiter and a crash loses no record.
`gw_idempotency`: a keyed digest of each client message id with its state (`pending`,
`done` with the replies in reference form), so a repeated message reaches the bot at most
once.  Neither table holds a value: records are built from redacted history, message ids
are digests.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gw_export_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("sink", sa.String(64), nullable=False),
        sa.Column("record_json", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("lease_until", sa.Float, nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
    )
    op.create_index("ix_gw_export_outbox_conversation_id", "gw_export_outbox", ["conversation_id"])
    op.create_index("ix_gw_export_outbox_due", "gw_export_outbox", ["status", "next_attempt_at"])
    op.create_table(
        "gw_idempotency",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("replies_json", sa.Text, nullable=True),
    )
    op.create_index("ix_gw_idempotency_conversation_id", "gw_idempotency", ["conversation_id"])
    op.create_index("ix_gw_idempotency_created_at", "gw_idempotency", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_gw_idempotency_created_at", table_name="gw_idempotency")
    op.drop_index("ix_gw_idempotency_conversation_id", table_name="gw_idempotency")
    op.drop_table("gw_idempotency")
    op.drop_index("ix_gw_export_outbox_due", table_name="gw_export_outbox")
    op.drop_index("ix_gw_export_outbox_conversation_id", table_name="gw_export_outbox")
    op.drop_table("gw_export_outbox")
