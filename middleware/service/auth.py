"""Bearer-key authentication and role checks, as FastAPI dependencies.

`require(*roles)` builds a dependency that resolves the caller's role from the key
(401 when missing or unknown) and refuses any role not listed (403).  `admin` passes
every check: it may do everything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from middleware.service.apikeys import Role, find_role
from middleware.service.errors import AuthError, RoleForbidden
from middleware.service.state import Gateway
from middleware.service.store import guarded

__all__ = ["get_gateway", "require"]


def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthError("Authorization")
    return key.strip()


def require(*roles: Role) -> Callable[[Request], Awaitable[Role]]:
    """Dependency: the caller's role, which must be in `roles` (or admin)."""
    allowed = frozenset(roles) | {Role.ADMIN}

    async def dependency(request: Request) -> Role:
        key = _bearer(request)
        gateway = get_gateway(request)

        def lookup() -> Role | None:
            with guarded(gateway.sessions) as session:
                return find_role(session, key)

        role = await run_in_threadpool(lookup)
        if role is None:
            raise AuthError("Authorization")
        if role not in allowed:
            raise RoleForbidden(role.value)
        return role

    return dependency
