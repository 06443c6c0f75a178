"""Signed session cookies and per-session CSRF tokens for the log viewer.

The cookie is signed with HMAC-SHA256 under a key derived from the master key (through
the key ring's grant key, with its own label, so a session token can never pass as a grant
and vice versa).  It carries the API key's public prefix, a random nonce, the expiry and a
*binding*: an HMAC of the key's stored SHA-256 digest.  Neither the key nor its digest is in
the cookie; every request re-reads the key row by prefix and recomputes the binding, so a
deleted key ends its sessions at once and the role always comes from the database.

A signature alone cannot be taken back, so each session also has a row in the database
(`gw_ui_sessions`: the SHA-256 of the nonce, the key prefix, the expiry; workers stay
stateless).  Signing out deletes it, and a cookie whose row is gone is refused: a copied
cookie stops working the moment its owner signs out (`end_session`), or when its key is
revoked (`end_sessions_of`).

CSRF: the token for a session is HMAC(secret, "csrf" + nonce); forms carry it in a hidden
field and every POST compares it in constant time.  The sign-in form gets the same from a
short-lived pre-session cookie (login CSRF).  SameSite=Strict is the second fence.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from coatcheck.middleware.models import ApiKey, UiSession
from coatcheck.middleware.service.apikeys import Role

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "Codec",
    "Issued",
    "StaffSession",
    "end_session",
    "end_sessions_of",
    "store_session",
]

SESSION_COOKIE = "cc_ui_session"
LOGIN_COOKIE = "cc_ui_login"
SESSION_SECONDS = 8 * 3600
LOGIN_SECONDS = 15 * 60


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _session_id(nonce: str) -> str:
    """What the database keeps of a session: the nonce's SHA-256 (the cookie holds the nonce)."""
    return hashlib.sha256(nonce.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class StaffSession:
    """A verified session: who (role, key prefix), its CSRF token and its row id."""

    role: Role
    prefix: str
    csrf: str
    sid: str

    @property
    def actor(self) -> str:
        """The audit actor: role and the key's public prefix (never the key)."""
        return f"ui:{self.role.value}:{self.prefix}"


class Codec:
    """Issues and checks the two cookies; `secret` is derived, never the master key."""

    def __init__(self, grant_key: bytes) -> None:
        self._secret = hmac.new(grant_key, b"coatcheck/ui-session/v1", hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "Codec()"

    def _mac(self, label: str, data: bytes) -> bytes:
        return hmac.new(self._secret, label.encode("ascii") + b"\0" + data, hashlib.sha256).digest()

    def _seal(self, payload: dict[str, Any]) -> str:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("ascii")
        return f"{_b64(body)}.{_b64(self._mac('cookie', body))}"

    def _open(self, token: str | None, now: float) -> dict[str, Any] | None:
        if not token or token.count(".") != 1 or len(token) > 1024:
            return None
        body_text, mac_text = token.split(".")
        try:
            body, mac = _unb64(body_text), _unb64(mac_text)
            if not hmac.compare_digest(mac, self._mac("cookie", body)):
                return None
            payload = json.loads(body)
        except ValueError:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("e"), int | float):
            return None
        return payload if payload["e"] > now else None

    def csrf_for(self, nonce: str) -> str:
        return _b64(self._mac("csrf", nonce.encode("ascii")))

    @staticmethod
    def csrf_ok(expected: str, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())

    # -- sign-in (pre-session) ----------------------------------------------------------

    def login_cookie(self, now: float) -> tuple[str, str]:
        """A pre-session cookie and the CSRF token the sign-in form must echo."""
        nonce = secrets.token_urlsafe(16)
        return self._seal({"n": nonce, "e": now + LOGIN_SECONDS, "k": "login"}), self.csrf_for(
            nonce
        )

    def login_csrf(self, token: str | None, now: float) -> str | None:
        payload = self._open(token, now)
        if payload is None or payload.get("k") != "login" or not isinstance(payload.get("n"), str):
            return None
        return self.csrf_for(payload["n"])

    # -- sessions -----------------------------------------------------------------------

    def _binding(self, key_hash: str) -> str:
        return _b64(self._mac("bind", key_hash.encode("ascii")))

    def issue(self, row: ApiKey, now: float) -> Issued:
        """A new session for key `row`: the cookie, and the row `store_session` must write."""
        nonce = secrets.token_urlsafe(16)
        payload = {
            "k": "session",
            "p": row.prefix,
            "n": nonce,
            "e": now + SESSION_SECONDS,
            "b": self._binding(row.key_hash),
        }
        return Issued(self._seal(payload), _session_id(nonce), row.prefix, now + SESSION_SECONDS)

    def verify(self, session: Session, token: str | None, now: float) -> StaffSession | None:
        """The session behind `token`, or None (bad signature, expired, key gone)."""
        payload = self._open(token, now)
        if payload is None or payload.get("k") != "session":
            return None
        prefix, nonce, binding = payload.get("p"), payload.get("n"), payload.get("b")
        if not all(isinstance(v, str) for v in (prefix, nonce, binding)):
            return None
        row = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).first()
        if row is None or not hmac.compare_digest(self._binding(row.key_hash), str(binding)):
            return None
        sid = _session_id(str(nonce))
        live = session.scalar(
            select(UiSession.id).where(
                UiSession.id == sid, UiSession.key_prefix == row.prefix, UiSession.expires_at > now
            )
        )
        if live is None:  # signed out, or its key revoked: the signature alone is not enough
            return None
        return StaffSession(Role(row.role), row.prefix, self.csrf_for(str(nonce)), sid)


@dataclass(frozen=True)
class Issued:
    """A session just issued: the cookie for the browser, the row for the database."""

    cookie: str
    sid: str
    prefix: str
    expires_at: float


def store_session(session: Session, issued: Issued, now: float) -> None:
    """Record a new session (and drop the expired ones: sign-ins keep the table small)."""
    session.execute(delete(UiSession).where(UiSession.expires_at <= now))
    session.add(
        UiSession(
            id=issued.sid, key_prefix=issued.prefix, created_at=now, expires_at=issued.expires_at
        )
    )


def end_session(session: Session, sid: str) -> None:
    """Sign out: the session's cookie is refused from now on, on every worker."""
    session.execute(delete(UiSession).where(UiSession.id == sid))


def end_sessions_of(session: Session, prefix: str) -> int:
    """End every session signed in with the key `prefix` (its revocation); how many."""
    result = session.execute(delete(UiSession).where(UiSession.key_prefix == prefix))
    return int(getattr(result, "rowcount", 0) or 0)
