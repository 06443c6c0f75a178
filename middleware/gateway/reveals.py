"""The doors values come out through (besides confirmations): grants for actions, granted
reveals, staff reveals under the lifecycle rules (checks: `checks.py`).  Every attempt is audited:
by the vault when it decides, by `RefusalAudit` when refused before the vault.

Staff reveals (docs/lifecycle.md) are checked inside the vault's reveal transaction
against the value's own key epoch, so a conversation that ended (or reopened with a new
epoch) is judged by the state of the epoch that holds the value:

- `agent`: only while the value's conversation is active; never after it ended.
- `auditor` (and `admin`, which may do everything an auditor may): must state a purpose;
  after a `mask` end only with purpose `reporting`; a `retain`ed value with any purpose.
- any other role: refused.
- shredded or expired values: 410 for everyone, before any rule.

Every staff attempt is one audit row: actor `<role>:<actor>`, action `reveal`, the stated
purpose (masked: staff type it by hand), outcome `ok` / `refused:<code>` / `unknown` /
`shredded` / `expired`.  Refusals raise `RevealRefused` (403, `error` = the code).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from coatcheck.grammar import REFERENCE_RE
from coatcheck.middleware.gateway.apikeys import Caller, Role
from coatcheck.middleware.gateway.errors import BadText, RevealRefused
from coatcheck.middleware.gateway.external import ExternalValues
from coatcheck.middleware.gateway.masking import Redact
from coatcheck.middleware.gateway.refusals import RefusalAudit
from coatcheck.middleware.gateway.store.db import Clock
from coatcheck.vault import (
    Grant,
    GrantRefused,
    GrantSigner,
    UnknownReference,
    ValueState,
    Vault,
)
from coatcheck.vault.errors import InvalidGrant
from coatcheck.vault.lifecycle import MASKED

__all__ = ["REPORTING", "IssuedGrant", "Reveals", "parse_reference"]

REPORTING = "reporting"


def parse_reference(reference: str) -> tuple[str, str]:
    """`(entity type, ref id)` of a bare `CC_<TYPE>_<id>`; `BadText("ref")` otherwise."""
    match = REFERENCE_RE.fullmatch(reference)
    if match is None or match.group(3) is not None:
        raise BadText("ref", "must be a reference such as CC_EMAIL_ADDRESS_7k2m9xq4cw")
    return match.group(1), match.group(2)


def _staff_policy(
    role: Role, entity_type: str, purpose: str | None
) -> Callable[[ValueState], str | None]:
    def decide(state: ValueState) -> str | None:
        if state.entity_type != entity_type:
            return "reference"  # the reference's type is not the stored one: unknown
        if role is Role.AGENT:
            return "conversation_ended" if state.ended else None
        if role in (Role.AUDITOR, Role.ADMIN):
            if purpose is None:
                return "purpose_required"
            if state.status == MASKED and purpose != REPORTING:
                return "reporting_only"
            return None
        return "role_not_allowed"

    return decide


@dataclass(frozen=True, slots=True)
class IssuedGrant:
    token: str
    expires_at: float


class Reveals:
    """Grants and reveals; `actions` is the config's allow-list, `mask_purpose`
    masks typed purposes (the detector) before they reach the audit chain."""

    def __init__(
        self,
        vault: Vault,
        signer: GrantSigner,
        *,
        external: ExternalValues,
        refusals: RefusalAudit,
        mask_purpose: Redact,
        actions: Mapping[str, frozenset[str]],
        grant_ttl: float,
        clock: Clock,
    ) -> None:
        self._vault = vault
        self._signer = signer
        self._external = external
        self._refusals = refusals
        self._mask = mask_purpose
        self._actions = actions
        self._grant_ttl = grant_ttl
        self._clock = clock

    def audit_purpose(self, purpose: str | None) -> str | None:
        """The purpose as the audit chain keeps it: whatever the detector finds masked."""
        text = purpose.strip() if purpose is not None else ""
        return self._mask(text) if text else None

    def issue_grant(
        self,
        caller: Caller,
        conversation_id: str,
        entity_types: list[str],
        purpose: str,
        action: str,
    ) -> IssuedGrant:
        """A grant for `action` to reveal these types in this conversation, if the config's
        allow-list lets the action have them all (a refusal is audited)."""
        if not set(entity_types) <= self._actions.get(action, frozenset()):
            self._refusals.record(
                actor=caller.role_actor,
                action="grant",
                reason="type_not_allowed",
                conversation_id=conversation_id,
            )
            raise GrantRefused("type not allowed for this action")
        expires_at = self._clock() + self._grant_ttl
        grant = Grant(
            conversation_id=conversation_id,
            entity_types=frozenset(entity_types),
            purpose=self.audit_purpose(purpose) or purpose,
            caller=action,
            expires_at=expires_at,
        )
        return IssuedGrant(self._signer.issue(grant), expires_at)

    def reveal(
        self,
        caller: Caller,
        conversation_id: str,
        reference: str,
        grant: str | None,
        purpose: str | None,
    ) -> tuple[str, str]:
        """`(value, type)`: staff (and admin without a grant) under the lifecycle rules,
        anyone else with a valid grant (a missing, expired or forged one is audited)."""
        entity_type, ref_id = parse_reference(reference)
        if caller.role in (Role.AGENT, Role.AUDITOR) or (
            caller.role is Role.ADMIN and grant is None
        ):
            value = self.staff_reveal(
                conversation_id, reference, caller.role, caller.actor, purpose
            )
            return value, entity_type
        try:
            if grant is None:
                raise GrantRefused("grant_required", "a grant is required")
            verified = self._signer.verify(grant, self._clock())
        except (GrantRefused, InvalidGrant) as exc:
            # refused before the vault: audited here, since the vault never sees the
            # request; a foreign or too narrow grant the vault audits itself
            self._refusals.record(
                actor=caller.role_actor,
                action="reveal",
                reason=exc.reason if isinstance(exc, GrantRefused) else "invalid_grant",
                conversation_id=conversation_id,
                ref=ref_id,
                entity_type=entity_type,
            )
            raise
        if not self._within_grant(verified, conversation_id, ref_id, entity_type):
            # The vault refuses it (and counts it); its audit row names the key that
            # presented the grant, not the grant's action: whoever misused a grant must be
            # the one the audit trail names.
            verified = replace(verified, caller=caller.role_actor)
        opened = self._vault.reveal(conversation_id, ref_id, verified)
        return self._external.value(conversation_id, ref_id, entity_type, opened), entity_type

    def _within_grant(
        self, grant: Grant, conversation_id: str, ref_id: str, entity_type: str
    ) -> bool:
        """Whether a valid grant covers this conversation and this reference's type (as
        written, and as stored: looked up without a value or an audit row, so a reference
        string naming a granted type over a value of another type is caught too).  An
        unknown reference counts as covered: the vault audits it as unknown."""
        if grant.conversation_id != conversation_id or entity_type not in grant.entity_types:
            return False
        try:
            stored = self._vault.lookup(conversation_id, ref_id).entity_type
        except UnknownReference:
            return True
        return stored in grant.entity_types

    def staff_reveal(
        self,
        conversation_id: str,
        reference: str,
        role: Role,
        actor: str,
        purpose: str | None,
    ) -> str:
        """The value behind `reference` for a staff member; audited.

        Raises `RevealRefused` (403) when the rules refuse, `UnknownReference` (404),
        `ConversationShredded` (410 `shredded`) or `ValueExpired` (410 `expired`).
        """
        entity_type, ref_id = parse_reference(reference)
        stated = self.audit_purpose(purpose)
        try:
            opened = self._vault.reveal_for(
                conversation_id,
                ref_id,
                actor=f"{role.value}:{actor}"[:255],
                purpose=stated[:255] if stated is not None else None,
                policy=_staff_policy(role, entity_type, stated),
            )
        except GrantRefused as exc:
            if exc.reason == "reference":
                raise UnknownReference(ref_id) from None
            raise RevealRefused(exc.reason) from None
        # An externally held type stores the customer's id: staff see the fetched value too.
        return self._external.value(conversation_id, ref_id, entity_type, opened)
