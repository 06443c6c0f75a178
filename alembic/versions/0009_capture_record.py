"""The gateway's own record of a conversation's latest secure-capture result.

Revision ID: 0009
Revises: 0008

Issue 14, finding 4: a user can type `/coatcheck_capture{"ok": true, ...}`, so the action
server asks the gateway (`GET /v1/conversations/{id}/capture`) whether the capture result
in the bot's latest message is one the gateway sent.  `last_capture_json` holds
`{"type", "ok", "ref", "at"}` (a type name, a boolean, a reference, a time: never a value);
it is set with the captured message's record and cleared by every other inbound record and
by the end.  Existing rows keep NULL (no capture to confirm).  Plain `ADD COLUMN`, no batch
copy (see 0007).
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("gw_conversation_state", sa.Column("last_capture_json", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("gw_conversation_state", "last_capture_json")
