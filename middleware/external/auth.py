"""Turning an auth config into request headers and query parameters."""

from __future__ import annotations

import aiohttp

from coatcheck.middleware.external.config import (
    ApiKeyAuth,
    AuthConfig,
    BasicAuth,
    BearerAuth,
    NoAuth,
    OAuth2ClientCredentials,
)

__all__ = ["static_credentials"]


def static_credentials(auth: AuthConfig) -> tuple[dict[str, str], dict[str, str]]:
    """Headers and query params for the static auth types (OAuth2 adds its token later)."""
    if isinstance(auth, NoAuth | OAuth2ClientCredentials):
        return {}, {}
    if isinstance(auth, BasicAuth):
        basic = aiohttp.encode_basic_auth(auth.username, auth.password.get_secret_value())
        return {"Authorization": basic}, {}
    if isinstance(auth, BearerAuth):
        return {"Authorization": f"Bearer {auth.token.get_secret_value()}"}, {}
    if isinstance(auth, ApiKeyAuth):
        pair = {auth.name: auth.value.get_secret_value()}
        return (pair, {}) if auth.location == "header" else ({}, pair)
    raise TypeError(type(auth).__name__)  # pragma: no cover - the union is closed
