"""API docs that work offline, and an OpenAPI document that says how to authenticate.

FastAPI's own `/docs` and `/redoc` load Swagger UI and ReDoc from a CDN: on a gateway
without internet access (the usual place for a PII vault) they stay blank.
`fastapi-offline` serves the same assets from the installed package instead.

Every route but the probes takes `Authorization: Bearer <API key>`; the key is checked by
our own dependency (`service/auth.py`), which FastAPI cannot see, so the scheme is added
to the generated document here: one `bearer` security scheme, required by every
operation except `OPEN_PATHS`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

__all__ = ["OPEN_PATHS", "SCHEME", "offline_app"]

OPEN_PATHS = frozenset({"/health", "/ready"})
SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key (`coatcheck apikey create --role ROLE`); the role decides "
    "which routes it may use (docs/service.md).",
}


def offline_app(**kwargs: Any) -> FastAPI:
    """A FastAPI app whose `/docs` and `/redoc` need no CDN and whose document has `bearer`."""
    app = FastAPIOffline(**kwargs)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _declare_bearer(generate())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _declare_bearer(schema: dict[str, Any]) -> None:
    schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = SCHEME
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            operation["security"] = [] if path in OPEN_PATHS else [{"bearer": []}]
