"""Bearer-key authentication and role checks, as FastAPI dependencies.

`require(*roles)` builds a dependency that resolves the caller from the key (401 when
missing or unknown) and refuses any role not listed (403).  `admin` passes every check:
it may do everything.  A key verified in the last few seconds is answered from the
worker's `KeyCache` without touching the database; otherwise it is looked up on the
read-only engine (no SQLite write lock), off the event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from coatcheck.middleware.gateway.apikeys import Caller, Role, key_digest, parse_key
from coatcheck.middleware.gateway.errors import AuthError, RoleForbidden
from coatcheck.middleware.gateway.store.keys import ApiKeys
from coatcheck.middleware.service.keycache import KeyCache

__all__ = ["Authenticator", "bearer_prefix", "require"]


class Authenticator:
    """Key -> role, through the worker's short-lived cache (the store on a miss)."""

    def __init__(self, keys: ApiKeys, cache: KeyCache) -> None:
        self._keys = keys
        self._cache = cache

    async def role_of(self, key: str) -> Role | None:
        """The role of `key` (cached for a few seconds once verified), None when unknown."""
        if parse_key(key) is None:
            return None
        digest = key_digest(key)
        role = self._cache.get(digest)
        if role is None:
            role = await run_in_threadpool(self._keys.role_of, key)
            if role is not None:
                self._cache.put(digest, role)
        return role


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthError("Authorization")
    return key.strip()


def bearer_prefix(request: Request) -> str | None:
    """The public prefix of the presented key (never the key itself), if well formed."""
    key = request.headers.get("authorization", "").partition(" ")[2].strip()
    return parse_key(key)


def require(*roles: Role) -> Callable[[Request], Awaitable[Caller]]:
    """Dependency: the caller, whose role must be in `roles` (or admin)."""
    allowed = frozenset(roles) | {Role.ADMIN}

    async def dependency(request: Request) -> Caller:
        key = _bearer(request)
        auth: Authenticator = request.app.state.auth
        role = await auth.role_of(key)
        if role is None:
            raise AuthError("Authorization")
        if role not in allowed:
            raise RoleForbidden(role.value)
        return Caller(role, parse_key(key))

    return dependency
