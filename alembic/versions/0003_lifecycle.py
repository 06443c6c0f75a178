"""Lifecycle: epoch end and retention, value status and expiry, conversation activity.

Revision ID: 0003
Revises: 0002

Vault: `conversations` gets `ended_at`, `end_status`, `retain_until`; `stored_values` gets
`status` and `expires_at` (indexed: the sweeper's range scan).  Gateway:
`gw_conversation_state` gets the conversation's lifecycle (`status`, `started_at`,
`last_activity`, `ended_at`, `end_reason`, `retain_until`), indexed on (status,
last_activity) for the idle sweep.  Existing data is backfilled: shredded epochs are
marked ended, every conversation in the history gets a state row with its first and last
activity, and a conversation whose data key was shredded after its last message is
marked `shredded` (that is what the old `/end` did).
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_STATE = "gw_conversation_state"


def upgrade() -> None:
    op.add_column("conversations", sa.Column("ended_at", sa.Float(), nullable=True))
    op.add_column("conversations", sa.Column("end_status", sa.String(16), nullable=True))
    op.add_column("conversations", sa.Column("retain_until", sa.Float(), nullable=True))
    op.add_column("stored_values", sa.Column("status", sa.String(16), nullable=True))
    op.add_column("stored_values", sa.Column("expires_at", sa.Float(), nullable=True))
    op.create_index("ix_stored_values_expires_at", "stored_values", ["expires_at"])

    op.add_column(
        _STATE,
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    )
    op.add_column(_STATE, sa.Column("started_at", sa.Float(), nullable=True))
    op.add_column(_STATE, sa.Column("last_activity", sa.Float(), nullable=True))
    op.add_column(_STATE, sa.Column("ended_at", sa.Float(), nullable=True))
    op.add_column(_STATE, sa.Column("end_reason", sa.String(16), nullable=True))
    op.add_column(_STATE, sa.Column("retain_until", sa.Float(), nullable=True))
    op.create_index("ix_gw_conversation_state_status_activity", _STATE, ["status", "last_activity"])

    # Backfill (portable SQL: SQLite and PostgreSQL).
    op.execute(
        "UPDATE conversations SET ended_at = COALESCE(shredded_at, created_at), "
        "end_status = 'shredded' WHERE wrapped_dek IS NULL"
    )
    op.execute("UPDATE stored_values SET status = 'shredded' WHERE ciphertext IS NULL")
    op.execute(
        "UPDATE gw_conversation_state SET "
        "started_at = COALESCE((SELECT MIN(h.created_at) FROM gw_history h "
        "WHERE h.conversation_id = gw_conversation_state.conversation_id), updated_at), "
        "last_activity = COALESCE((SELECT MAX(h.created_at) FROM gw_history h "
        "WHERE h.conversation_id = gw_conversation_state.conversation_id), updated_at)"
    )
    op.execute(
        "INSERT INTO gw_conversation_state "
        "(conversation_id, context_json, updated_at, status, started_at, last_activity) "
        "SELECT conversation_id, NULL, MAX(created_at), 'active', MIN(created_at), "
        "MAX(created_at) FROM gw_history WHERE conversation_id NOT IN "
        "(SELECT conversation_id FROM gw_conversation_state) GROUP BY conversation_id"
    )
    op.execute(
        "UPDATE gw_conversation_state SET status = 'shredded', end_reason = 'api', "
        "ended_at = (SELECT MAX(c.shredded_at) FROM conversations c "
        "WHERE c.conversation_id = gw_conversation_state.conversation_id) "
        "WHERE EXISTS (SELECT 1 FROM conversations c "
        "WHERE c.conversation_id = gw_conversation_state.conversation_id AND c.wrapped_dek IS NULL "
        "AND c.shredded_at >= gw_conversation_state.last_activity) "
        "AND NOT EXISTS (SELECT 1 FROM conversations c "
        "WHERE c.conversation_id = gw_conversation_state.conversation_id "
        "AND c.wrapped_dek IS NOT NULL)"
    )


def downgrade() -> None:
    op.drop_index("ix_gw_conversation_state_status_activity", table_name=_STATE)
    with op.batch_alter_table(_STATE) as batch:
        for column in (
            "retain_until",
            "end_reason",
            "ended_at",
            "last_activity",
            "started_at",
            "status",
        ):
            batch.drop_column(column)
    op.drop_index("ix_stored_values_expires_at", table_name="stored_values")
    with op.batch_alter_table("stored_values") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("status")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("retain_until")
        batch.drop_column("end_status")
        batch.drop_column("ended_at")
