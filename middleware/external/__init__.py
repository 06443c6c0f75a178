"""External resolution (bring your own vault): fetch a referenced value from the customer.

`ExternalResolver(endpoints, session, clock=..., sleep=...)` maps entity types to
`EndpointConfig`s (URL/body templates, auth, retry and breaker policy) and returns values
wrapped in `FetchedValue`, whose repr never shows them. See docs/external.md. Errors::

    ExternalError
    ├── UnknownEntityType(entity_type)
    ├── EndpointUnavailable(endpoint)
    │   └── EndpointTimeout(endpoint)
    ├── BadResponse(endpoint, reason)
    ├── ReferenceNotFound(endpoint)
    │   └── UnusableReference(endpoint)
    ├── AuthFailed(endpoint, reason)
    └── CircuitOpen(endpoint)
"""

from coatcheck.middleware.external.breaker import BreakerState, CircuitBreaker
from coatcheck.middleware.external.config import (
    ApiKeyAuth,
    AuthConfig,
    BasicAuth,
    BearerAuth,
    BreakerPolicy,
    EndpointConfig,
    NoAuth,
    OAuth2ClientCredentials,
    RetryPolicy,
)
from coatcheck.middleware.external.errors import (
    AuthFailed,
    BadResponse,
    CircuitOpen,
    EndpointTimeout,
    EndpointUnavailable,
    ExternalError,
    ReferenceNotFound,
    UnknownEntityType,
    UnusableReference,
)
from coatcheck.middleware.external.oauth import TokenCache
from coatcheck.middleware.external.resolver import ExternalResolver
from coatcheck.middleware.external.secret import FetchedValue

__all__ = [
    "ApiKeyAuth",
    "AuthConfig",
    "AuthFailed",
    "BadResponse",
    "BasicAuth",
    "BearerAuth",
    "BreakerPolicy",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpen",
    "EndpointConfig",
    "EndpointTimeout",
    "EndpointUnavailable",
    "ExternalError",
    "ExternalResolver",
    "FetchedValue",
    "NoAuth",
    "OAuth2ClientCredentials",
    "ReferenceNotFound",
    "RetryPolicy",
    "TokenCache",
    "UnknownEntityType",
    "UnusableReference",
]
