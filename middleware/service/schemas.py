"""Request bodies of the HTTP API; every text field refuses lone surrogates and NUL.

The channel webhook's body belongs to its adapter (`adapters/rasa_rest.py`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from coatcheck.grammar import TYPE_NAME_RE
from coatcheck.middleware.config import CheckName
from coatcheck.middleware.gateway.text import CleanStr, ConversationId

__all__ = [
    "CheckIn",
    "ContextIn",
    "GrantIn",
    "RedactIn",
    "RevealIn",
    "SenderIn",
    "SubjectIn",
    "TemporaryIn",
]

TypeName = Annotated[str, Field(pattern=rf"^{TYPE_NAME_RE.pattern}$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class ContextIn(_Body):
    """A context rule: what the conversation's next user message holds."""

    expect: TypeName
    capture: Literal["pattern", "whole", "secure"] | None = None
    check: CheckName | None = None  # a declared check without operand (secure capture)
    retries: int = Field(default=0, ge=0, le=10)
    retry_text: Annotated[CleanStr, Field(max_length=1000)] | None = None


class RedactIn(_Body):
    """`grant`: an action server's grant for this conversation (docs/service.md, "Redact
    into a conversation"): values of its types get their existing references back."""

    text: CleanStr
    conversation_id: ConversationId
    context: ContextIn | None = None
    grant: Annotated[str, Field(max_length=4096)] | None = None


class GrantIn(_Body):
    conversation_id: ConversationId
    entity_types: Annotated[list[TypeName], Field(min_length=1, max_length=32)]
    purpose: Annotated[CleanStr, Field(min_length=1, max_length=200)]
    action: Annotated[CleanStr, Field(min_length=1, max_length=200)]


class RevealIn(_Body):
    conversation_id: ConversationId
    ref: Annotated[str, Field(max_length=200)]
    grant: Annotated[str, Field(max_length=4096)] | None = None
    purpose: Annotated[CleanStr, Field(max_length=200)] | None = None


class CheckIn(_Body):
    """A declared check by name (`checks.declared`); `value` only for an `equals` check.

    No predicate travels in a request: the old `predicate` field is refused (422)."""

    conversation_id: ConversationId
    ref: Annotated[str, Field(max_length=200)]
    check: CheckName
    value: Annotated[CleanStr, Field(max_length=1000)] | None = None


class TemporaryIn(_Body):
    """A value for a temporary reference: valid `ttl_seconds` or while the conversation lives."""

    type: TypeName = "TEMPORARY"
    value: Annotated[CleanStr, Field(min_length=1, max_length=4000)]
    ttl_seconds: Annotated[float, Field(gt=0, le=7 * 86400)] | None = None


class SubjectIn(_Body):
    """A person, by the sender id their channel uses (hashed to its pseudonym)."""

    sender: ConversationId


class SenderIn(_Body):
    """A sender id as the channel speaks it, for staff looking a person's conversation up
    (hashed to its pseudonym; in a body, never a URL)."""

    sender: ConversationId
