"""Pseudonymous conversations: a version marker; the re-keying runs online.

Revision ID: 0010
Revises: 0009

Issue 14, finding 7 (docs/keys.md, "Pseudonyms").  From this version on the channel
adapter keys every conversation by `Vault.pseudonym(sender)` (`p_` + 26 base32), so the
gateway's tables hold no real sender id.  Rows written before hold the raw id in
`gw_history`, `gw_conversation_state` and `gw_rate_counters`, and the vault's epochs and
values bind it in their associated data.

Moving them needs the root key (the pseudonym key is sealed under it, and every data key
and value bound to the old id is re-sealed under the new one), which a migration does not
have: as for 0007, the key work runs online, when the service opens the vault with its
key provider (`Vault.migrate_pseudonyms`, called by `compose` at every worker's start,
before it serves): one transaction per conversation, one `migrate` audit event for the
whole move.  This revision changes no schema and refuses nothing (an earlier draft
refused such databases); it marks the version whose code performs that step.
"""

from __future__ import annotations

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change in SQL: the conversations move online (`Vault.migrate_pseudonyms`)."""


def downgrade() -> None:
    """Nothing to undo: 0010 changes no schema."""
