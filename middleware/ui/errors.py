"""The log viewer's exceptions: one root, `UiError`, under the gateway's `GatewayError`.

They subclass the gateway's tree so `middleware/service/handlers.py` stays the one place
that turns exceptions into HTTP (it reads `status` and `code`); like every gateway error
they carry a field name, never a value.

    UiError (GatewayError)      400 ui_error
    ├── CsrfFailed              403 csrf_failed   (missing / wrong form token)
    └── NotSignedIn             401 not_signed_in (no valid session on a POST)
"""

from __future__ import annotations

from coatcheck.middleware.gateway.errors import GatewayError

__all__ = ["CsrfFailed", "NotSignedIn", "UiError"]


class UiError(GatewayError):
    status = 400
    code = "ui_error"
    default_message = "the request was rejected"


class CsrfFailed(UiError):
    status = 403
    code = "csrf_failed"
    default_message = "the form token is missing or does not match this session"


class NotSignedIn(UiError):
    status = 401
    code = "not_signed_in"
    default_message = "sign in at /ui/login first"
