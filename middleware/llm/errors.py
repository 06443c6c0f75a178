"""Errors of the LLM gateway core, and OpenAI's error shape for them.

Every error names a parameter path, a status or a reason, never a value: the messages go
back to clients in OpenAI's shape (`{"error": {"message", "type", "param", "code"}}`) and
into logs, so they are built from names only.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "InvalidRequest",
    "LlmError",
    "NotConfigured",
    "RedactionUnavailable",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamUnavailable",
    "openai_error",
]


def openai_error(
    message: str, error_type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error body; callers pass names and fixed texts only."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


class LlmError(Exception):
    """Root of the package's errors: an HTTP status and an OpenAI-shaped body, no values."""

    status = 500
    error_type = "server_error"
    default_message = "internal error"

    def __init__(
        self, message: str | None = None, *, param: str | None = None, code: str | None = None
    ) -> None:
        self.param = param
        self.code = code
        super().__init__(message or self.default_message)

    def body(self) -> dict[str, Any]:
        """The JSON body a client receives."""
        return openai_error(str(self), self.error_type, self.param, self.code)


class InvalidRequest(LlmError):
    """The client's request is not a chat-completions body we can redact (400)."""

    status = 400
    error_type = "invalid_request_error"
    default_message = "invalid request"


class RedactionUnavailable(LlmError):
    """Detection or the vault failed: nothing was forwarded (503, fail closed)."""

    status = 503
    error_type = "server_error"
    default_message = "redaction is unavailable; nothing was sent to the model"

    def __init__(self, reason: str = "vault") -> None:
        super().__init__(code="redaction_unavailable")
        self.reason = reason


class UpstreamError(LlmError):
    """The model provider answered with an error; status and names are kept, text is not."""

    error_type = "upstream_error"
    default_message = "the model provider returned an error"

    def __init__(
        self,
        status: int,
        *,
        error_type: str | None = None,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        # The provider's own message is dropped (it could quote text); its status, type,
        # param and code are kept when they look like identifiers (see upstream.py).
        super().__init__(f"the model provider returned HTTP {status}", param=param, code=code)
        self.status = status if 400 <= status <= 599 else 502
        if error_type:
            self.error_type = error_type


class UpstreamUnavailable(LlmError):
    """The model provider could not be reached or timed out (502/504)."""

    status = 502
    error_type = "upstream_error"
    default_message = "the model provider could not be reached"

    def __init__(self, reason: str, status: int = 502) -> None:
        super().__init__(f"the model provider could not be reached ({reason})")
        self.status = status
        self.reason = reason


class UpstreamProtocolError(LlmError):
    """The provider's answer is not a chat-completions answer we can filter (502)."""

    status = 502
    error_type = "upstream_error"
    default_message = "the model provider's answer could not be read"

    def __init__(self, reason: str) -> None:
        super().__init__(f"the model provider's answer could not be read ({reason})")
        self.reason = reason


class NotConfigured(LlmError):
    """No model provider is configured (`COATCHECK_LLM_UPSTREAM_URL` unset): 503."""

    status = 503
    error_type = "server_error"
    default_message = "the LLM gateway is not configured (COATCHECK_LLM_UPSTREAM_URL)"

    def __init__(self) -> None:
        super().__init__(code="llm_not_configured")
