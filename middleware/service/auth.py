"""Bearer-key authentication and role checks, as FastAPI dependencies.

`require(*roles)` builds a dependency that resolves the caller's role from the key
(401 when missing or unknown) and refuses any role not listed (403).  `admin` passes
every check: it may do everything.  A key verified in the last few seconds is answered
from the worker's `KeyCache` without touching the database; otherwise it is looked up on
the read-only engine (no SQLite write lock), off the event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from coatcheck.middleware.service.apikeys import Role, find_role, key_digest, parse_key
from coatcheck.middleware.service.errors import AuthError, RoleForbidden, StorageUnavailable
from coatcheck.middleware.service.state import Gateway

__all__ = ["get_gateway", "require"]


async def get_gateway(request: Request) -> Gateway:
    """The worker's gateway (async: a plain `def` dependency would cost a threadpool hop)."""
    gateway: Gateway = request.app.state.gateway
    return gateway


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthError("Authorization")
    return key.strip()


def _lookup(gateway: Gateway, key: str) -> Role | None:
    try:
        with Session(gateway.reader) as session:
            return find_role(session, key)
    except SQLAlchemyError:
        raise StorageUnavailable("database") from None


async def resolve_role(gateway: Gateway, key: str) -> Role | None:
    """The role of `key` (cached for a few seconds once verified), None when unknown."""
    if parse_key(key) is None:
        return None
    digest = key_digest(key)
    role = gateway.keys.get(digest)
    if role is None:
        role = await run_in_threadpool(_lookup, gateway, key)
        if role is not None:
            gateway.keys.put(digest, role)
    return role


def require(*roles: Role) -> Callable[[Request], Awaitable[Role]]:
    """Dependency: the caller's role, which must be in `roles` (or admin)."""
    allowed = frozenset(roles) | {Role.ADMIN}

    async def dependency(request: Request) -> Role:
        role = await resolve_role(request.app.state.gateway, _bearer(request))
        if role is None:
            raise AuthError("Authorization")
        if role not in allowed:
            raise RoleForbidden(role.value)
        return role

    return dependency
