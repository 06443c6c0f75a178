"""The API key table: one row per key (public prefix, SHA-256 digest, role).

Revoking a key also ends the log-viewer sessions signed in with it (`gw_ui_sessions`), in
the same transaction.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select

from coatcheck.middleware.gateway.apikeys import Role, key_digest, new_key, parse_key
from coatcheck.middleware.gateway.store.db import Db
from coatcheck.middleware.gateway.store.statements import KEYS, SESSIONS
from coatcheck.vault import Transaction

__all__ = ["ApiKeys", "KeyListing", "KeyRow", "Revoked"]


@dataclass(frozen=True, slots=True)
class KeyRow:
    """A stored key: what the log viewer's session binds to (never the key itself)."""

    prefix: str
    key_hash: str
    role: Role


@dataclass(frozen=True, slots=True)
class KeyListing:
    """What `coatcheck apikey list` shows of a key: never the key, never its digest."""

    prefix: str
    role: Role
    created_at: float


@dataclass(frozen=True, slots=True)
class Revoked:
    """A revoked key's role and how many log-viewer sessions ended with it."""

    role: Role
    sessions_ended: int


class ApiKeys:
    """Create keys, and find the role (or the row) of a presented key."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def create(self, role: Role) -> str:
        """Store a new key for `role` and return it (the only time it exists in clear)."""
        with self._db.transaction() as tx:
            return self._insert(tx, role)

    def _insert(self, tx: Transaction, role: Role) -> str:
        made = new_key()
        tx.execute(
            insert(KEYS).values(
                prefix=made.prefix,
                key_hash=made.digest,
                role=role.value,
                created_at=self._db.clock(),
            )
        )
        return made.key

    def create_first(
        self, roles: Iterable[Role], publish: Callable[[dict[Role, str]], None]
    ) -> bool:
        """With no key stored yet, create one per role and `publish` them, all or nothing.

        `publish` runs inside the transaction (it writes the starter key file): if it
        raises, no key is stored.  False when keys existed (nothing created).
        """
        with self._db.transaction() as tx:
            if tx.execute(select(func.count()).select_from(KEYS)).scalar_one() > 0:
                return False
            publish({role: self._insert(tx, role) for role in roles})
        return True

    def row(self, prefix: str) -> KeyRow | None:
        """The stored row of a key prefix (lock-free read), or None."""
        query = select(KEYS.c.prefix, KEYS.c.key_hash, KEYS.c.role).where(KEYS.c.prefix == prefix)
        rows = self._db.read(query)
        return KeyRow(rows[0].prefix, rows[0].key_hash, Role(rows[0].role)) if rows else None

    def verify(self, key: str) -> KeyRow | None:
        """The row of `key` when the key is well formed and its digest matches, else None."""
        prefix = parse_key(key)
        if prefix is None:
            return None
        row = self.row(prefix)
        if row is None or not hmac.compare_digest(row.key_hash, key_digest(key)):
            return None
        return row

    def role_of(self, key: str) -> Role | None:
        """The role of `key`, or None when the key is unknown or malformed."""
        row = self.verify(key)
        return None if row is None else row.role

    def prefixes(self) -> frozenset[str]:
        """The public prefixes of every key that exists (the revocation watch's read)."""
        return frozenset(self._db.scalars(select(KEYS.c.prefix)))

    def listing(self) -> list[KeyListing]:
        """Every key, oldest first (prefix, role, creation time; the digest stays unread)."""
        query = select(KEYS.c.prefix, KEYS.c.role, KEYS.c.created_at).order_by(
            KEYS.c.created_at, KEYS.c.id
        )
        return [KeyListing(r.prefix, Role(r.role), r.created_at) for r in self._db.read(query)]

    def revoke(self, prefix: str) -> Revoked | None:
        """Delete the key with public prefix `prefix` and end its log-viewer sessions, one
        transaction; None when no key has that prefix."""
        with self._db.transaction() as tx:
            role = tx.execute(
                delete(KEYS).where(KEYS.c.prefix == prefix).returning(KEYS.c.role)
            ).scalar()
            if role is None:
                return None
            ended = tx.execute(delete(SESSIONS).where(SESSIONS.c.key_prefix == prefix)).rowcount
        return Revoked(Role(role), int(ended or 0))
