"""Audit rows for refusals decided before the vault: a wrong role, an invalid grant.

The vault audits what it decides itself (a grant for another conversation or type, an
unknown reference, the lifecycle rules of staff reveals, every check).  Refusals decided
earlier, on the routes that open values (`/v1/reveal`, `/v1/check`) or hand out the right
to (`/v1/grants`), would otherwise leave no trace: a caller probing with the wrong key
role, replaying an expired grant or forging one.  Those are appended to the same hash
chain here, outcome `refused:<reason>`.  A row names the actor by role and the key's public
prefix, the conversation and reference when known; never a value, a key or a grant token.

Only callers with a valid key are audited (a missing or unknown key is 401 and writes
nothing), so an anonymous flood cannot grow the audit log.  If the audit write fails the
answer stays the refusal (logged): nothing is revealed either way.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from coatcheck.middleware.gateway.store.db import Clock
from coatcheck.vault import Vault, audit

__all__ = ["RefusalAudit"]

log = logging.getLogger(__name__)


class RefusalAudit:
    """Appends refusals decided before the vault to the vault's audit chain."""

    def __init__(self, vault: Vault, *, tenant: str, clock: Clock) -> None:
        self._vault = vault
        self._tenant = tenant
        self._clock = clock

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
            with self._vault.engine.begin() as conn:
                audit.append(
                    conn,
                    at=self._clock(),
                    tenant=self._tenant,
                    actor=actor[:255],
                    action=action,
                    outcome=f"refused:{reason}"[:32],
                    conversation_id=conversation_id[:255] if conversation_id else None,
                    ref=ref,
                    entity_type=entity_type,
                )
        except SQLAlchemyError:
            log.error("a refusal could not be audited: storage failure (action=%s)", action)
