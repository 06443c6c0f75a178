"""Bearer-key authentication and role checks, as FastAPI dependencies.

`require(*roles)` builds a dependency that resolves the caller from the key (401 when
missing or unknown) and refuses any role not listed (403).  `admin` passes every check:
it may do everything.  A key verified in the last few seconds is answered from the
worker's `KeyCache` without touching the database; otherwise it is looked up on the
read-only engine (no SQLite write lock), off the event loop.  Each worker watches for
revoked keys (one read of the key prefixes every `REVOCATION_POLL_SECONDS`) and evicts them
from its cache: `coatcheck apikey revoke` takes effect in every worker within about a
second, not after the cache's TTL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from coatcheck.middleware.gateway.apikeys import Caller, Role, key_digest, parse_key
from coatcheck.middleware.gateway.errors import AuthError, RoleForbidden
from coatcheck.middleware.gateway.store.keys import ApiKeys
from coatcheck.middleware.service.keycache import KeyCache

__all__ = ["REVOCATION_POLL_SECONDS", "Authenticator", "bearer_prefix", "require"]

log = logging.getLogger(__name__)

# How often each worker reads which keys still exist (a few dozen rows, one query).
REVOCATION_POLL_SECONDS = 1.0


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
            prefix = parse_key(key)
            if role is not None and prefix is not None:
                self._cache.put(digest, role, prefix)
        return role

    async def watch_revocations(self, interval: float = REVOCATION_POLL_SECONDS) -> None:
        """Evict revoked keys from the cache every `interval` seconds, until cancelled.

        If the keys cannot be read the whole cache is dropped (fail closed: the next
        request of each key goes to the database)."""
        while True:
            await asyncio.sleep(interval)
            try:
                prefixes = await run_in_threadpool(self._keys.prefixes)
            except Exception as exc:  # the database is away: forget, do not crash the task
                log.warning("API key revocation watch: %s", type(exc).__name__)
                self._cache.clear()
                continue
            self._cache.keep_only(prefixes)


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
