"""Grants: what a caller may reveal, and signed tokens that carry them over HTTP.

A token is `base64url(json) "." base64url(HMAC-SHA256)` under a key HKDF-derived from the
vault's grant key (`Vault.grant_key`: a sealed service key, stable across root rotations;
a legacy `KeyRing`'s master-derived key is still taken).  The MAC is verified before the
payload is parsed, and every failure (format, MAC, schema, expiry) is the same opaque
`InvalidGrant`, so a probing caller learns nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from coatcheck.vault import _crypto
from coatcheck.vault.errors import InvalidGrant
from coatcheck.vault.keyring import KeyRing

__all__ = ["Grant", "GrantSigner"]


@dataclass(frozen=True)
class Grant:
    """Permission to reveal `entity_types` of one conversation until `expires_at` (epoch s)."""

    conversation_id: str
    entity_types: frozenset[str]
    purpose: str
    caller: str
    expires_at: float


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _parse(payload: Any) -> Grant:
    if not isinstance(payload, dict) or set(payload) != {"c", "t", "p", "a", "e"}:
        raise InvalidGrant()
    types = payload["t"]
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise InvalidGrant()
    text_fields = (payload["c"], payload["p"], payload["a"])
    if not all(isinstance(f, str) for f in text_fields) or not isinstance(
        payload["e"], float | int
    ):
        raise InvalidGrant()
    return Grant(payload["c"], frozenset(types), payload["p"], payload["a"], float(payload["e"]))


class GrantSigner:
    """Issues and verifies grant tokens under a grant key (`Vault.grant_key`)."""

    def __init__(self, key: bytes | KeyRing) -> None:
        grant_key = key.grant_key if isinstance(key, KeyRing) else key
        self._key = _crypto.derive(grant_key, b"coatcheck/grant-token/v1")

    def __repr__(self) -> str:
        return "GrantSigner(<redacted>)"

    def issue(self, grant: Grant) -> str:
        payload = {
            "c": grant.conversation_id,
            "t": sorted(grant.entity_types),
            "p": grant.purpose,
            "a": grant.caller,
            "e": grant.expires_at,
        }
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return body + "." + _b64(_crypto.hmac_sha256(self._key, body.encode("ascii")))

    def verify(self, token: str, now: float) -> Grant:
        try:
            body, tag = token.split(".")
            if not _crypto.hmac_verify(self._key, body.encode("ascii"), _unb64(tag)):
                raise InvalidGrant()
            grant = _parse(json.loads(_unb64(body)))
        except (ValueError, UnicodeError, binascii.Error):
            raise InvalidGrant() from None
        if grant.expires_at <= now:
            raise InvalidGrant()
        return grant
