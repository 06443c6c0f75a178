"""The calls bots and action servers make besides the turn itself: redact a text for a
conversation, set the rule for its next message, vault a temporary value."""

from __future__ import annotations

from typing import Literal

from coatcheck.middleware.detect import Capture, Context, UnknownTypeError
from coatcheck.middleware.detect.context_rules import resolve_rule
from coatcheck.middleware.gateway.errors import BadText, ConversationClosed
from coatcheck.middleware.gateway.lifecycle import Lifecycle
from coatcheck.middleware.gateway.recent import RecentValues
from coatcheck.middleware.gateway.rules import ContextRule
from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.middleware.pipeline import Redactor, RedactResult
from coatcheck.vault import Vault

__all__ = ["RedactionService"]


class RedactionService:
    """Redaction on request, rules and temporary references for one conversation."""

    def __init__(
        self,
        *,
        store: GatewayStore,
        redactor: Redactor,
        vault: Vault,
        lifecycle: Lifecycle,
        recent: RecentValues,
    ) -> None:
        self._store = store
        self._redactor = redactor
        self._vault = vault
        self._lifecycle = lifecycle
        self._recent = recent

    def redact(
        self,
        conversation_id: str,
        text: str,
        expect: str | None = None,
        capture: Capture | Literal["secure"] | None = None,
    ) -> RedactResult:
        """`text` redacted for the conversation, optionally under a context rule."""
        context = None
        if expect is not None:
            if capture == "secure":
                raise BadText("context.capture", "secure capture is for the webhook only")
            context = Context(expect, capture)
        try:
            return self._redactor.redact(conversation_id, text, context)
        except UnknownTypeError:
            raise BadText("context.expect", "unknown entity type") from None

    def set_rule(self, conversation_id: str, raw: dict[str, object]) -> ContextRule:
        """Check and store the rule for the conversation's next user message."""
        rule = ContextRule.parse(raw)
        if not rule.secure:
            try:
                resolve_rule(self._redactor.config, rule.context())
            except UnknownTypeError:
                raise BadText("expect", "unknown entity type") from None
        self._store.conversations.set_rule(conversation_id, rule)
        return rule

    def temporary(
        self, conversation_id: str, entity_type: str, value: str, ttl_seconds: float | None
    ) -> tuple[str, float | None]:
        """A single-use reference `(CC_<TYPE>_<id>, expires_at)` for `value`, forgotten after
        `ttl_seconds` or at the end; the conversation must be active (started if new)."""
        if self._lifecycle.ensure_active(conversation_id) != "active":
            raise ConversationClosed("conversation_id")
        ref_id, expires_at = self._vault.tokenize_temporary(
            conversation_id, entity_type, value, ttl_seconds
        )
        self._recent.add(value)  # the log filter knows it now, like any vaulted value
        return f"CC_{entity_type}_{ref_id}", expires_at
