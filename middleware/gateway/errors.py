"""The gateway's exception tree; mapped to HTTP in one place (`service/handlers.py`).

Each class carries the outcome it stands for (`status`, `code`), so the HTTP layer and the
log viewer (`ui/errors.py` subclasses the root) map them the same way.

    GatewayError                      500 internal
    ├── AuthError                     401 unauthorized   (missing / unknown key)
    │   └── RoleForbidden             403 forbidden      (key lacks the role)
    ├── RevealRefused(code)           403 <code>         (staff reveal refused: lifecycle rules)
    ├── CheckRefused(code)            403 <code>         (check_type, check_budget; audited)
    ├── UnknownCheck                  422 unknown_check  (not a declared check; audited)
    ├── PatternTimeout                422 pattern_timeout (a lookaround pattern hit its limit)
    ├── ConversationClosed            409 conversation_ended (a value for an ended one)
    ├── DeliveryUnknown               409 duplicate_message (a repeat of a message in flight)
    ├── RequestRejected               400 bad_request
    │   ├── MalformedJson             400 malformed_json
    │   ├── TooDeep                   400 too_deep
    │   ├── BadText                   422 bad_text       (lone surrogate, NUL, too long)
    │   │   └── ImitatesGateway       422 imitates_gateway (user text posing as coatcheck)
    │   ├── PayloadTooLarge           413 too_large
    │   ├── RateLimited               429 rate_limited   (+ Retry-After)
    │   └── TooManyValues             429 too_many_values (the conversation's cap)
    ├── StorageUnavailable            503 storage_unavailable (fail closed)
    ├── BotUnavailable                502 bot_unavailable
    ├── ConversationNotFound          404 unknown_conversation (export of an unknown id)
    └── UnsupportedTurn               422 unsupported_turn (a turn shape no service handles yet)

External resolution (`coatcheck.middleware.external.ExternalError`) and export delivery
(`coatcheck.middleware.export.ExportError`) keep their own roots; `handlers.py` maps them too.

Exceptions carry the offending *name* (a field, a role) and never a value, so no user
input can travel into an error body or a log line through them.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BadText",
    "BotUnavailable",
    "CheckRefused",
    "ConversationClosed",
    "ConversationNotFound",
    "DeliveryUnknown",
    "GatewayError",
    "ImitatesGateway",
    "MalformedJson",
    "PatternTimeout",
    "PayloadTooLarge",
    "RateLimited",
    "RequestRejected",
    "RevealRefused",
    "RoleForbidden",
    "StorageUnavailable",
    "TooDeep",
    "TooManyValues",
    "UnknownCheck",
    "UnsupportedTurn",
]


class GatewayError(Exception):
    """Root of the gateway's errors; `status` and `code` drive the HTTP mapping."""

    status = 500
    code = "internal"
    default_message = "internal error"

    def __init__(self, name: str | None = None, message: str | None = None) -> None:
        self.name = name
        self.message = message or self.default_message
        super().__init__(self.message if name is None else f"{name}: {self.message}")


class AuthError(GatewayError):
    status = 401
    code = "unauthorized"
    default_message = "a valid API key is required (Authorization: Bearer <key>)"


class RoleForbidden(AuthError):
    status = 403
    code = "forbidden"
    default_message = "this API key's role may not use this route"


class RevealRefused(GatewayError):
    """A staff reveal refused by the lifecycle rules; `code` says which (staff.py)."""

    status = 403
    code = "reveal_refused"
    messages = {
        "conversation_ended": "the conversation has ended; agents see values only while active",
        "purpose_required": "a reveal by this role must state a purpose",
        "reporting_only": "masked after the end: only an auditor's reveal for 'reporting'",
        "role_not_allowed": "this role may not reveal values",
    }

    def __init__(self, reason: str) -> None:
        super().__init__(None, self.messages.get(reason, "the reveal was refused"))
        self.code = reason if reason in self.messages else "reveal_refused"


class CheckRefused(GatewayError):
    """A declared check refused before the vault ran it (`gateway/checks.py`); audited."""

    status = 403
    code = "check_refused"
    messages = {
        "check_type": "this check is declared for another entity type",
        "check_budget": "this reference's check budget is spent",
    }

    def __init__(self, reason: str) -> None:
        super().__init__(None, self.messages.get(reason, "the check was refused"))
        self.code = reason if reason in self.messages else "check_refused"


class UnknownCheck(GatewayError):
    status = 422
    code = "unknown_check"
    default_message = "not a check declared in the config (checks.declared)"


class PatternTimeout(GatewayError):
    """A configured lookaround pattern ran past its time limit on this text: nothing was
    stored or forwarded (fail closed)."""

    status = 422
    code = "pattern_timeout"
    default_message = "a configured pattern took too long on this text; nothing was processed"


class ConversationClosed(GatewayError):
    status = 409
    code = "conversation_ended"
    default_message = "the conversation has ended"


class DeliveryUnknown(GatewayError):
    """A repeated message id whose first attempt has no known outcome (still in flight,
    or its worker died): not delivered again, so the bot acts at most once."""

    status = 409
    code = "duplicate_message"
    default_message = (
        "a message with this id was received before and its outcome is unknown; it was not "
        "delivered again (use a new message id to send it as a new message)"
    )


class RequestRejected(GatewayError):
    status = 400
    code = "bad_request"
    default_message = "the request was rejected"


class MalformedJson(RequestRejected):
    code = "malformed_json"
    default_message = "the body is not valid JSON"


class TooDeep(RequestRejected):
    code = "too_deep"
    default_message = "the JSON body is nested too deeply"


class BadText(RequestRejected):
    status = 422
    code = "bad_text"
    default_message = "the text holds characters that cannot be processed"


class ImitatesGateway(BadText):
    """Channel text that would reach the bot as a message coatcheck itself sends (a
    `/coatcheck_...` intent), or an intent payload whose JSON escapes would make the bot
    read other text than the detector scanned."""

    code = "imitates_gateway"
    default_message = "the message imitates a message of coatcheck's own"


class PayloadTooLarge(RequestRejected):
    status = 413
    code = "too_large"
    default_message = "the request body is too large"


class RateLimited(RequestRejected):
    status = 429
    code = "rate_limited"
    default_message = "too many messages for this sender; retry later"
    messages = {
        "api_key": "too many requests for this API key; retry later",
        "conversation": "too many requests for this conversation; retry later",
    }

    def __init__(self, retry_after: int, name: str | None = None) -> None:
        super().__init__(name, self.messages.get(name or ""))
        self.retry_after = retry_after


class TooManyValues(RequestRejected):
    status = 429
    code = "too_many_values"
    default_message = (
        "this conversation holds the most values allowed; nothing was stored "
        "(end it to start a new one)"
    )


class StorageUnavailable(GatewayError):
    status = 503
    code = "storage_unavailable"
    default_message = "storage is unavailable; the message was not processed"


class BotUnavailable(GatewayError):
    status = 502
    code = "bot_unavailable"
    default_message = "the bot did not answer"


class ConversationNotFound(GatewayError):
    status = 404
    code = "unknown_conversation"
    default_message = "no history for this conversation"


class UnsupportedTurn(GatewayError):
    """A turn the conversation service cannot take yet (several messages or parts, tool
    calls: the shapes the OpenAI-compatible adapter will bring)."""

    status = 422
    code = "unsupported_turn"
    default_message = "this turn's shape is not supported"
