"""Pseudonymous conversations: refuse a database whose conversations use raw sender ids.

Revision ID: 0010
Revises: 0009

Issue 14, finding 7 (docs/keys.md, "Pseudonyms").  From this version on the channel
adapter keys every conversation by `Vault.pseudonym(sender)` (`p_` + 26 base32), so the
gateway's tables hold no real sender id.  Rows written before hold the raw id in
`gw_history`, `gw_conversation_state` and `gw_rate_counters`, and the vault's epochs and
values bind it in their associated data.

Moving them needs the root key (the pseudonym key is sealed under it, and every data key
and value bound to the old id must be re-sealed under the new one) and one audit event
for the rewrite; a migration has no key provider (as for 0007, key work runs online).
That online step is not built yet, so this migration refuses such a database with a
message naming what to do, before it changes anything (no half-migrated rows): it never
prints an id, only how many.  A database with no conversation, or only pseudonymous
ones, passes.  No schema change.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic.util import CommandError

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_PSEUDONYM = re.compile(r"^p_[a-z2-7]{26}$")
_COLUMNS = (
    ("gw_history", "conversation_id"),
    ("gw_conversation_state", "conversation_id"),
    ("gw_rate_counters", "sender"),
)


def _legacy_ids(conn: sa.Connection) -> int:
    """How many distinct ids in the gateway's tables are not pseudonyms."""
    legacy: set[str] = set()
    for table, column in _COLUMNS:
        rows = conn.execute(sa.text(f"SELECT DISTINCT {column} FROM {table}"))  # noqa: S608
        legacy.update(value for (value,) in rows if not _PSEUDONYM.match(value))
    return len(legacy)


def upgrade() -> None:
    count = _legacy_ids(op.get_bind())
    if count:
        raise CommandError(
            f"0010: {count} conversation id(s) in the gateway's tables are raw sender ids "
            "from before pseudonymous conversations; rewriting them (re-sealing their "
            "values under the pseudonym, one audit event) is not built in this version, "
            "so nothing was changed: erase those people first (`coatcheck subject erase "
            "--sender ID` finds raw ids too) or stay on the previous version "
            '(docs/keys.md, "Pseudonyms")'
        )


def downgrade() -> None:
    """Nothing to undo: 0010 changes no schema."""
