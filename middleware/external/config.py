"""Config models for bring-your-own-vault endpoints, one per entity type.

Credentials are `SecretStr` so configs can be logged or shown in errors safely. The ref id
goes into the URL template's `{ref}` (URL-quoted) and, for POST, into every string of the
body template equal to or containing `{ref}`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    PositiveFloat,
    SecretStr,
    model_validator,
)

__all__ = [
    "ApiKeyAuth",
    "AuthConfig",
    "BasicAuth",
    "BearerAuth",
    "BreakerPolicy",
    "EndpointConfig",
    "NoAuth",
    "OAuth2ClientCredentials",
    "RetryPolicy",
]

_VALUE_PATH_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoAuth(_Model):
    """No credentials (an endpoint on a private network)."""

    type: Literal["none"] = "none"


class BasicAuth(_Model):
    """HTTP Basic."""

    type: Literal["basic"]
    username: str = Field(min_length=1)
    password: SecretStr


class BearerAuth(_Model):
    """A static bearer token."""

    type: Literal["bearer"]
    token: SecretStr


class ApiKeyAuth(_Model):
    """An API key sent in a header or a query parameter."""

    type: Literal["api_key"]
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    value: SecretStr
    location: Literal["header", "query"] = "header"


class OAuth2ClientCredentials(_Model):
    """OAuth2 client-credentials grant; the token is cached until `refresh_margin` before expiry."""

    type: Literal["oauth2_client_credentials"]
    token_url: HttpUrl
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    scope: str | None = None
    refresh_margin_seconds: float = Field(default=30.0, ge=0)
    default_expires_in: PositiveFloat = 300.0


AuthConfig = Annotated[
    NoAuth | BasicAuth | BearerAuth | ApiKeyAuth | OAuth2ClientCredentials,
    Field(discriminator="type"),
]


class RetryPolicy(_Model):
    """Bounded exponential backoff: delay = min(base * 2**attempt, max)."""

    attempts: int = Field(default=3, ge=1, le=10)
    backoff_base_seconds: float = Field(default=0.1, ge=0)
    backoff_max_seconds: float = Field(default=2.0, ge=0)


class BreakerPolicy(_Model):
    """Open after `failure_threshold` consecutive failed resolutions; retry after cool-down."""

    failure_threshold: int = Field(default=5, ge=1)
    cooldown_seconds: float = Field(default=30.0, gt=0)


class EndpointConfig(_Model):
    """How to fetch one entity type's value from the customer's vault."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    method: Literal["GET", "POST"] = "GET"
    url_template: str
    body_template: dict[str, Any] | None = None
    value_path: str = "value"
    timeout_seconds: PositiveFloat = 5.0
    max_body_bytes: int = Field(default=65_536, ge=64)
    auth: AuthConfig = Field(default_factory=NoAuth)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = Field(default_factory=BreakerPolicy)

    @model_validator(mode="after")
    def _ref_has_a_place(self) -> EndpointConfig:
        HttpUrl(self.url_template.replace("{ref}", "ref"))
        if not _VALUE_PATH_RE.fullmatch(self.value_path):
            raise ValueError("value_path: use dotted names like 'data.value'")
        if self.method == "GET":
            if "{ref}" not in self.url_template:
                raise ValueError("url_template: a GET endpoint needs '{ref}' in the URL")
            if self.body_template is not None:
                raise ValueError("body_template: only allowed with method POST")
        elif "{ref}" not in repr(self.body_template) and "{ref}" not in self.url_template:
            raise ValueError("body_template: a POST endpoint needs '{ref}' in the body")
        return self
