"""Gateway tables: API keys, conversation state, redacted history, rate counters.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gw_api_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("prefix", sa.String(16), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "gw_conversation_state",
        sa.Column("conversation_id", sa.String(255), primary_key=True),
        sa.Column("context_json", sa.Text, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "gw_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_gw_history_conversation_id", "gw_history", ["conversation_id"])
    op.create_table(
        "gw_rate_counters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sender", sa.String(255), nullable=False),
        sa.Column("window_start", sa.Integer, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.UniqueConstraint("sender", "window_start"),
    )


def downgrade() -> None:
    op.drop_table("gw_rate_counters")
    op.drop_index("ix_gw_history_conversation_id", table_name="gw_history")
    op.drop_table("gw_history")
    op.drop_table("gw_conversation_state")
    op.drop_table("gw_api_keys")
