"""The log viewer's live sessions (`gw_ui_sessions`): what sign-out and revocation delete.

A signed cookie cannot be taken back, so each session also has a row: the SHA-256 of the
cookie's nonce (never the nonce), the API key's public prefix, the expiry.  A cookie whose
row is gone is refused (`ui/session.py`); revoking a key deletes its rows
(`ApiKeys.revoke`).
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from coatcheck.middleware.gateway.store.db import Db
from coatcheck.middleware.gateway.store.statements import SESSIONS

__all__ = ["UiSessions"]


class UiSessions:
    """Start, check and end log-viewer sessions by id (the nonce's digest)."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def start(self, sid: str, key_prefix: str, expires_at: float) -> None:
        """Record a new session (and drop the expired ones: sign-ins keep the table small)."""
        now = self._db.clock()
        with self._db.transaction() as tx:
            tx.execute(delete(SESSIONS).where(SESSIONS.c.expires_at <= now))
            tx.execute(
                insert(SESSIONS).values(
                    id=sid, key_prefix=key_prefix, created_at=now, expires_at=expires_at
                )
            )

    def live(self, sid: str, key_prefix: str, now: float) -> bool:
        """Whether the session is still on record for that key and not expired (lock-free)."""
        query = select(SESSIONS.c.id).where(
            SESSIONS.c.id == sid, SESSIONS.c.key_prefix == key_prefix, SESSIONS.c.expires_at > now
        )
        return bool(self._db.read(query))

    def end(self, sid: str) -> None:
        """Sign out: the session's cookie is refused from now on, on every worker."""
        with self._db.transaction() as tx:
            tx.execute(delete(SESSIONS).where(SESSIONS.c.id == sid))
