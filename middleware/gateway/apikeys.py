"""API keys: random 32-byte secrets with a short public prefix id, stored as SHA-256.

The prefix finds the row; the digest comparison uses `hmac.compare_digest` so timing says
nothing about the key.  The key itself is shown once, at creation, and never stored (the
table is `GatewayStore.keys`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["KEY_PREFIX", "Caller", "NewKey", "Role", "key_digest", "new_key", "parse_key"]

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


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the key's role and public prefix (never the key itself)."""

    role: Role
    prefix: str | None

    @property
    def actor(self) -> str:
        """`key:<prefix>`, the audit name of the calling key."""
        return f"key:{self.prefix or 'unknown'}"

    @property
    def role_actor(self) -> str:
        """`<role>:key:<prefix>`, the audit actor of a refusal decided before the vault."""
        return f"{self.role.value}:{self.actor}"


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly made key: the secret (shown once) and what is stored of it."""

    key: str
    prefix: str
    digest: str


def key_digest(key: str) -> str:
    """SHA-256 (hex) of a key; only ever called on keys `parse_key` accepted (ASCII)."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def new_key() -> NewKey:
    """A new random key with its public prefix and digest."""
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(key, prefix, key_digest(key))


def parse_key(key: str) -> str | None:
    """The public prefix of a well-formed key, else None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12:
        return None
    if not key.isascii():
        return None
    return parts[1]
