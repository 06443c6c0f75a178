"""History lines record their entities (reference, type, the rule that fired).

The log viewer shows, for each entity chip, the rule that detected it; the redacted text
alone carries only type and display. The column holds references and rule names only,
never a value. Existing lines keep NULL (shown as "not recorded").

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gw_history") as batch:
        batch.add_column(sa.Column("entities_json", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gw_history") as batch:
        batch.drop_column("entities_json")
