"""Errors of external resolution; they name an endpoint, type or reason, never a value.

The tree::

    ExternalError
    ├── UnknownEntityType(entity_type)     no endpoint configured for this type
    ├── EndpointUnavailable(endpoint)      connection refused/reset, or retries exhausted
    │   └── EndpointTimeout(endpoint)      the request did not finish in time
    ├── BadResponse(endpoint, reason)      non-JSON, wrong shape, unexpected status
    ├── ReferenceNotFound(endpoint)        the customer vault answered 404
    │   └── UnusableReference(endpoint)    the ref would walk the URL path; not sent
    ├── AuthFailed(endpoint, reason)       401/403, or the OAuth2 token endpoint failed
    └── CircuitOpen(endpoint)              the breaker is open; no request was sent

A fetched value never reaches a message: response bodies are dropped and errors are
raised `from None` so no chained exception carries one either.
"""

from __future__ import annotations

__all__ = [
    "AuthFailed",
    "BadResponse",
    "CircuitOpen",
    "EndpointTimeout",
    "EndpointUnavailable",
    "ExternalError",
    "ReferenceNotFound",
    "UnknownEntityType",
    "UnusableReference",
]


class ExternalError(Exception):
    """Root of the external package's errors; the message never holds a value."""

    default_message = "external resolution error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)


class UnknownEntityType(ExternalError):
    """No external endpoint is configured for the entity type."""

    def __init__(self, entity_type: str, message: str | None = None) -> None:
        self.entity_type = entity_type
        super().__init__(message or f"{entity_type}: no external endpoint configured")


class EndpointUnavailable(ExternalError):
    """The endpoint could not be reached (after the configured retries)."""

    reason = "unavailable"

    def __init__(self, endpoint: str, message: str | None = None) -> None:
        self.endpoint = endpoint
        super().__init__(message or f"{endpoint}: endpoint {self.reason}")


class EndpointTimeout(EndpointUnavailable):
    """The endpoint did not answer within the timeout."""

    reason = "timed out"


class BadResponse(ExternalError):
    """The endpoint answered, but not with a usable value."""

    def __init__(self, endpoint: str, reason: str, message: str | None = None) -> None:
        self.endpoint = endpoint
        self.reason = reason
        super().__init__(message or f"{endpoint}: bad response ({reason})")


class ReferenceNotFound(ExternalError):
    """The customer vault does not know the reference (HTTP 404)."""

    def __init__(self, endpoint: str, message: str | None = None) -> None:
        self.endpoint = endpoint
        super().__init__(message or f"{endpoint}: reference not found")


class UnusableReference(ReferenceNotFound):
    """The ref cannot be put into the endpoint's URL safely ("..", an encoded "/"...).

    A `ReferenceNotFound`: no customer vault knows such an id, and the gateway answers
    it like one (404), without having sent a request.
    """

    def __init__(self, endpoint: str, message: str | None = None) -> None:
        super().__init__(endpoint, message or f"{endpoint}: reference not usable in a URL")


class AuthFailed(ExternalError):
    """Credentials were refused, or no token could be obtained."""

    def __init__(self, endpoint: str, reason: str, message: str | None = None) -> None:
        self.endpoint = endpoint
        self.reason = reason
        super().__init__(message or f"{endpoint}: authentication failed ({reason})")


class CircuitOpen(ExternalError):
    """The endpoint's circuit breaker is open; the call was not attempted."""

    def __init__(self, endpoint: str, message: str | None = None) -> None:
        self.endpoint = endpoint
        super().__init__(message or f"{endpoint}: circuit open, not calling")
