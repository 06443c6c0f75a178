"""The log viewer's dependencies: the one domain service (or the sign-in machinery) each
page uses, read from the worker's `Services` (the HTTP API has its own, `service/deps.py`;
the two layers never import each other)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.gateway.records import ConversationRecords
from coatcheck.middleware.gateway.reveals import Reveals
from coatcheck.middleware.gateway.services import services_of
from coatcheck.middleware.gateway.store import KeyRow
from coatcheck.middleware.gateway.store.db import Clock
from coatcheck.middleware.gateway.store.keys import ApiKeys
from coatcheck.middleware.gateway.store.sessions import UiSessions
from coatcheck.middleware.ui.session import SESSION_COOKIE, Codec, Issued, StaffSession
from coatcheck.vault import Vault

__all__ = ["STAFF_ROLES", "AuditDep", "RecordsDep", "RevealsDep", "SignIn", "SignInDep"]

STAFF_ROLES = frozenset({Role.VIEWER, Role.AGENT, Role.AUDITOR, Role.ADMIN})


@dataclass(frozen=True)
class SignIn:
    """Sessions for one request: the cookie codec, the key and session tables, the clock."""

    codec: Codec
    keys: ApiKeys
    sessions: UiSessions
    clock: Clock
    audit_roles: frozenset[Role] = frozenset({Role.AUDITOR, Role.ADMIN})

    def may_audit(self, staff: StaffSession) -> bool:
        """Whether this staff member's role opens the audit view (config `ui.audit_roles`)."""
        return staff.role in self.audit_roles

    def staff(self, request: Request) -> StaffSession | None:
        """The signed-in staff member, or None (no live session, or a role not for the
        viewer)."""
        cookie = request.cookies.get(SESSION_COOKIE)
        staff = self.codec.verify(self.keys.row, self.sessions.live, cookie, self.clock())
        return staff if staff is not None and staff.role in STAFF_ROLES else None

    def start(self, row: KeyRow) -> Issued:
        """A new session for a staff key: its cookie, recorded server-side."""
        issued = self.codec.issue(row, self.clock())
        self.sessions.start(issued.sid, issued.prefix, issued.expires_at)
        return issued

    def end(self, staff: StaffSession) -> None:
        """Sign out: a copy of the session's cookie is refused from now on."""
        self.sessions.end(staff.sid)

    def staff_key(self, key: str) -> KeyRow | None:
        """The stored row of a staff member's API key (sign-in), None for any other key."""
        row = self.keys.verify(key)
        return row if row is not None and row.role in STAFF_ROLES else None


async def _sign_in(request: Request) -> SignIn:
    services = services_of(request.app.state)
    codec = Codec(services.vault.grant_key)
    return SignIn(
        codec, services.store.keys, services.store.ui_sessions, services.clock, services.audit_roles
    )


async def _records(request: Request) -> ConversationRecords:
    return services_of(request.app.state).records


async def _reveals(request: Request) -> Reveals:
    return services_of(request.app.state).reveals


async def _audit(request: Request) -> Vault:
    return services_of(request.app.state).vault


SignInDep = Annotated[SignIn, Depends(_sign_in)]
RecordsDep = Annotated[ConversationRecords, Depends(_records)]
RevealsDep = Annotated[Reveals, Depends(_reveals)]
AuditDep = Annotated[Vault, Depends(_audit)]
