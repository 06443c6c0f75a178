"""Log-viewer sessions are tracked server-side, so signing out ends them at once.

Sessions were signed stateless cookies: a signed-out cookie kept working until it expired
(8 h). Each sign-in now stores one row (the SHA-256 of the cookie's random nonce, the API
key's public prefix, the expiry); sign-out and key revocation delete it, and a cookie
without its row is refused. No value and no key is stored.  Sessions signed in before this
migration have no row and must sign in again.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gw_ui_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("key_prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_gw_ui_sessions_key_prefix", "gw_ui_sessions", ["key_prefix"])
    op.create_index("ix_gw_ui_sessions_expires_at", "gw_ui_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_gw_ui_sessions_expires_at", table_name="gw_ui_sessions")
    op.drop_index("ix_gw_ui_sessions_key_prefix", table_name="gw_ui_sessions")
    op.drop_table("gw_ui_sessions")
