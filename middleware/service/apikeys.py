"""API keys: random 32-byte secrets with a short public prefix id, stored as SHA-256.

The prefix finds the row; the digest comparison uses `hmac.compare_digest` so timing says
nothing about the key.  The key itself is shown once, at creation, and never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from enum import StrEnum

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from coatcheck.middleware.models import ApiKey

__all__ = [
    "KEY_PREFIX",
    "Role",
    "create_key",
    "find_role",
    "key_digest",
    "list_keys",
    "parse_key",
    "revoke_key",
]

KEY_PREFIX = "cck"


class Role(StrEnum):
    CHANNEL = "channel"
    BOT = "bot"
    ACTION_SERVER = "action-server"
    VIEWER = "viewer"
    AGENT = "agent"
    AUDITOR = "auditor"
    MONITOR = "monitor"  # reads /metrics only (a Prometheus scraper's key)
    ADMIN = "admin"


def key_digest(key: str) -> str:
    """SHA-256 (hex) of a key; only ever called on keys `parse_key` accepted (ASCII)."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def create_key(session: Session, role: Role, clock: Callable[[], float] = time.time) -> str:
    """Store a new key for `role` and return it (the only time it exists in clear)."""
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    session.add(
        ApiKey(prefix=prefix, key_hash=key_digest(key), role=role.value, created_at=clock())
    )
    return key


def parse_key(key: str) -> str | None:
    """The public prefix of a well-formed key, else None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12:
        return None
    if not key.isascii():
        return None
    return parts[1]


def find_role(session: Session, key: str) -> Role | None:
    """The role of `key`, or None when the key is unknown or malformed."""
    prefix = parse_key(key)
    if prefix is None:
        return None
    row = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if row is None or not hmac.compare_digest(row.key_hash, key_digest(key)):
        return None
    return Role(row.role)


def count_keys(session: Session) -> int:
    """How many keys exist (first-run bootstrap creates some when there are none)."""
    return len(session.scalars(select(ApiKey.id)).all())


def list_keys(session: Session) -> list[ApiKey]:
    """Every key row, oldest first (prefix, role, created_at; the digest stays unread)."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def revoke_key(session: Session, prefix: str) -> Role | None:
    """Delete the key with public prefix `prefix`; its role, or None if there was none."""
    row = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if row is None:
        return None
    session.execute(delete(ApiKey).where(ApiKey.id == row.id))
    return Role(row.role)
