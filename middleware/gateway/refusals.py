"""Audit rows for refusals decided before the vault: a wrong role, an invalid grant.

The vault audits what it decides itself (a grant for another conversation or type, an
unknown reference, the lifecycle rules of staff reveals, every check).  Refusals decided
earlier, on the routes that open values (`/v1/reveal`, `/v1/check`) or hand out the right
to (`/v1/grants`), would otherwise leave no trace: a caller probing with the wrong key
role, replaying an expired grant or forging one.  Those are appended to the same hash
chain through `Vault.audit_refusal` (outcome `refused:<reason>`).  A row names the actor
by role and the key's public prefix, the conversation and reference when known; never a
value, a key or a grant token.

Only callers with a valid key are audited (a missing or unknown key is 401 and writes
nothing), so an anonymous flood cannot grow the audit log.  If the audit write fails the
answer stays the refusal (logged): nothing is revealed either way.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from coatcheck.vault import Vault

__all__ = ["RefusalAudit"]

log = logging.getLogger(__name__)


class RefusalAudit:
    """Appends refusals decided before the vault to the vault's audit chain."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault

    def record(
        self,
        *,
        actor: str,
        action: str,
        reason: str,
        conversation_id: str | None = None,
        ref: str | None = None,
        entity_type: str | None = None,
    ) -> None:
        """Append one `refused:<reason>` row (blocking: call from a worker thread)."""
        try:
            self._vault.audit_refusal(
                actor=actor,
                action=action,
                reason=reason,
                conversation_id=conversation_id,
                ref=ref,
                entity_type=entity_type,
            )
        except SQLAlchemyError:
            log.error("a refusal could not be audited: storage failure (action=%s)", action)
