"""The calls bots and action servers make besides the turn itself: redact a text for a
conversation, set the rule for its next message, vault a temporary value.

Redact into a conversation is an equality oracle if it answers "same value, same
reference" to anyone: a bot key could guess a value and compare the reference it gets
with the one it saw (an SSN in 3 calls), and each wrong guess would be stored in the
victim's vault.  So the existing reference goes back only to a caller who already holds
the value legitimately (`redact`):

- the channel (and admin): it sent the user's text; values are vaulted as on the webhook;
- an action server with a valid grant for this conversation: values of the grant's types
  are vaulted and keep their references (what an action hands back re-tokenises to the
  reference it revealed);
- everyone else, and other types: each value is replaced by `[TYPE]`, nothing is stored,
  no reference is given (an unlinkable answer).

Every call is audited (action `redact`, purpose `linked`, `granted` or `unlinked`).

`/v1/redact` vaults under the conversation's lifecycle: in the vault's own transaction it
starts a never-seen conversation (a state row: the idle timeout and retention apply) or
finds it active; into an ended one nothing is vaulted (409), since only a message starts
a new session.  Calls are counted per API key and per conversation (429), and the values
of a conversation's live key epoch are capped (429, nothing stored).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from coatcheck.middleware.detect import Capture, Context, UnknownTypeError
from coatcheck.middleware.detect.context_rules import resolve_rule
from coatcheck.middleware.gateway.apikeys import Caller, Role
from coatcheck.middleware.gateway.checks import Checks
from coatcheck.middleware.gateway.errors import BadText, ConversationClosed, TooManyValues
from coatcheck.middleware.gateway.lifecycle import Lifecycle
from coatcheck.middleware.gateway.ratelimit import (
    RateLimit,
    ValueCap,
    key_counter,
    redact_counter,
)
from coatcheck.middleware.gateway.recent import RecentValues
from coatcheck.middleware.gateway.rules import ContextRule
from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.middleware.gateway.store.db import Clock
from coatcheck.middleware.pipeline import Redactor, RedactResult
from coatcheck.vault import GrantSigner, Transaction, Vault
from coatcheck.vault.errors import InvalidGrant

__all__ = ["RedactLimits", "RedactionService"]


@dataclass(frozen=True, slots=True)
class RedactLimits:
    """`/v1/redact` calls per API key and per conversation, and the values cap."""

    per_key: RateLimit
    per_conversation: RateLimit
    cap: ValueCap


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
        checks: Checks,
        signer: GrantSigner,
        clock: Clock,
        limits: RedactLimits | None = None,
    ) -> None:
        self._store = store
        self._limits = limits
        self._redactor = redactor
        self._vault = vault
        self._lifecycle = lifecycle
        self._recent = recent
        self._checks = checks
        self._signer = signer
        self._clock = clock

    def redact(
        self,
        caller: Caller,
        conversation_id: str,
        text: str,
        expect: str | None = None,
        capture: Capture | Literal["secure"] | None = None,
        grant: str | None = None,
    ) -> RedactResult:
        """`text` redacted for the conversation, optionally under a context rule; which
        values keep their references depends on the caller (module docstring); audited."""
        context = None
        if expect is not None:
            if capture == "secure":
                raise BadText("context.capture", "secure capture is for the webhook only")
            context = Context(expect, capture)
        self._count(conversation_id, caller.prefix)

        def record(tx: Transaction | None, _: RedactResult) -> None:
            if tx is not None:  # values were vaulted: only into a live conversation
                self._admit(tx, conversation_id)

        linked, purpose = self._linkable(caller, conversation_id, grant)
        try:
            if linked is None:
                result = self._redactor.redact(conversation_id, text, context, record=record)
            else:
                result = self._redactor.redact_limited(
                    conversation_id, text, context, linked, record=record
                )
        except UnknownTypeError:
            raise BadText("context.expect", "unknown entity type") from None
        self._vault.audit_access(
            actor=caller.role_actor,
            action="redact",
            conversation_id=conversation_id,
            purpose=f"{purpose}:{len(result.entities)}",
        )
        return result

    def _linkable(
        self, caller: Caller, conversation_id: str, grant: str | None
    ) -> tuple[frozenset[str] | None, str]:
        """(types that keep their references, None = all; the audit purpose)."""
        if caller.role in (Role.CHANNEL, Role.ADMIN):
            return None, "linked"
        if caller.role is not Role.ACTION_SERVER or grant is None:
            return frozenset(), "unlinked"
        try:
            verified = self._signer.verify(grant, self._clock())
        except InvalidGrant:
            return frozenset(), "unlinked_invalid_grant"
        if verified.conversation_id != conversation_id:
            return frozenset(), "unlinked_foreign_grant"
        return verified.entity_types, "granted"

    def _count(self, conversation_id: str, client: str | None) -> None:
        """One call against the key's and the conversation's windows (its own short
        transaction: a refused call costs no detection)."""
        if self._limits is None:
            return
        limits = (
            (key_counter("redact", client), self._limits.per_key),
            (redact_counter(conversation_id), self._limits.per_conversation),
        )
        with self._store.transaction() as tx:
            self._store.messages.bump(tx, limits)

    def _admit(self, tx: Transaction, conversation_id: str) -> None:
        """In the vault's transaction, after the values: the conversation must be (or
        now start) active, and under its cap; raising rolls the values back."""
        if not self._lifecycle.open_for_values(tx, conversation_id):
            raise ConversationClosed("conversation_id")
        if self._limits is not None:
            cap = self._limits.cap
            held = self._store.conversations.live_values(tx, cap.tenant, conversation_id)
            if held > cap.limit:
                raise TooManyValues("conversation_id")

    def set_rule(self, conversation_id: str, raw: dict[str, object]) -> ContextRule:
        """Check and store the rule for the conversation's next user message."""
        rule = ContextRule.parse(raw)
        if rule.check is not None and not self._checks.knows(rule.check):
            raise BadText("check", "not a declared check without operand (checks.declared)")
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
