"""Audit rows chained with a raw sender id show its pseudonym; the raw id is sealed.

Revision ID: 0013
Revises: 0012

Issue 14, finding 7 (docs/keys.md, "Pseudonyms").  0010 moved every conversation to its
pseudonym but left audit rows written before with the raw id they were chained with (a
phone number, an e-mail address), in clear.  `audit_log.sealed_conversation` holds that id
sealed (AES-GCM under a key derived from the audit key, bound to the pseudonym the row now
shows), so the chain's links and every signed checkpoint stay as they were: verification
opens the sealed id to recompute a link.  As for 0010 the key work runs online
(`Vault.migrate_pseudonyms` at each worker's start): this revision only adds the column.
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("sealed_conversation", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("sealed_conversation")
