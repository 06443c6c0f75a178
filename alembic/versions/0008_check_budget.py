"""Declared checks are counted per reference (issue 14, the check oracle).

`gw_check_budget` holds, per (conversation, reference), how many checks callers asked;
`checks.budget_per_reference` in the config caps it.  References and conversation ids
only, never a value.  Downgrade drops it (every budget starts afresh).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gw_check_budget",
        sa.Column("conversation_id", sa.String(255), primary_key=True),
        sa.Column("ref", sa.String(64), primary_key=True),
        sa.Column("used", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gw_check_budget")
