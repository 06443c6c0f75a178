"""A person's data on request: erase or export everything coatcheck holds of one sender.

The admin routes (`POST /v1/subjects/erase`, `/v1/subjects/export`) and the CLI's
`coatcheck subject erase|export` call this.  The person is named by the sender id their
channel uses; the vault finds their conversations under its pseudonym (`Vault.pseudonym`)
and, until every edge stores pseudonyms, under the raw id too (docs/keys.md, "A person's
data").

An erasure is more than the vault's values: the gateway's own rows are keyed by the
conversation id, which is personal itself (a phone number, an e-mail address), even
though history holds reference-form text only.  So the same ids lose, in the transaction
of the vault's summary audit row (`Vault.subject_erase(then=...)`), every history line,
their state row and their rate counters: an erasure on request overrides the retention
policy, as the vault's shred of `mask` and `retain` values does.  The audit row, under the
pseudonym, counts what went (never a value or the raw id).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.middleware.gateway.store.placeholders import forget_placeholders
from coatcheck.vault import SubjectValue, Transaction, Vault

__all__ = ["GatewayRowsForgotten", "SubjectErasure", "SubjectExport", "Subjects"]


@dataclass(frozen=True)
class GatewayRowsForgotten:
    """The gateway's rows of one person that an erasure deleted."""

    history_lines: int
    states: int
    rate_rows: int

    def audit_text(self) -> str:
        """What the summary audit row adds to its purpose: counts only."""
        return (
            f"gateway: {self.history_lines} history lines, {self.states} states, "
            f"{self.rate_rows} rate rows"
        )


@dataclass(frozen=True)
class SubjectErasure:
    """What an erasure destroyed: the vault's share (`ErasureSummary`) and the gateway's."""

    subject: str  # the pseudonym
    conversations: int
    shredded_epochs: int
    keks_destroyed: int
    final: bool  # the provider's destroy is real (PKCS#11, transit): older copies open nothing
    gateway: GatewayRowsForgotten

    def as_dict(self) -> dict[str, Any]:
        """The answer of the route (and the CLI): counts and the pseudonym, never an id."""
        return asdict(self)


@dataclass(frozen=True)
class SubjectExport:
    """One person's values, named by their pseudonym."""

    subject: str
    values: list[SubjectValue]

    def as_dict(self) -> dict[str, Any]:
        """The person's copy: every value with its conversation, reference and status."""
        return {
            "subject": self.subject,
            "values": [
                {
                    "conversation_id": v.conversation_id,
                    "ref": v.ref,
                    "type": v.entity_type,
                    "created_at": v.created_at,
                    "status": v.status or "live",
                    "value": v.value,
                }
                for v in self.values
            ],
        }


class Subjects:
    """Erasure and export of one person's data (admin routes and the CLI; audited by the
    vault as `actor`)."""

    def __init__(self, store: GatewayStore, vault: Vault) -> None:
        self._store = store
        self._vault = vault

    def erase(self, sender: str, actor: str) -> SubjectErasure:
        """Shred every conversation of the sender in the vault (their KEKs destroyed) and
        delete the gateway's history, state and rate rows of the same conversation ids."""
        forgotten: list[GatewayRowsForgotten] = []

        def gateway_rows(tx: Transaction, ids: tuple[str, ...]) -> str:
            # The message path's lock order: rate counter -> state row -> history.  The
            # channel's rate key is its conversation id (the sender) for every edge today.
            messages, states = self._store.messages, self._store.conversations
            rates = messages.forget_rates(tx, ids)
            state_rows = states.forget(tx, ids)
            self._store.check_budgets.forget(tx, ids)
            rows = GatewayRowsForgotten(messages.forget_history(tx, ids), state_rows, rates)
            # Records waiting for a sink and message ids of those conversations go too
            # (not counted in the audit text: neither holds a value or a raw id).
            self._store.outbox.forget(tx, ids)
            self._store.message_ids.forget(tx, ids)
            forget_placeholders(tx, ids)  # the LLM route's numbering (references only)
            forgotten.append(rows)
            return rows.audit_text()

        done = self._vault.subject_erase(sender, actor, then=gateway_rows)
        return SubjectErasure(
            self._vault.pseudonym(sender),
            done.conversations,
            done.epochs,
            done.keks_destroyed,
            done.final,
            forgotten[-1],  # the hook ran in the vault's last transaction
        )

    def export(self, sender: str, actor: str) -> SubjectExport:
        """Every value the vault still holds for the sender, each release audited."""
        values = self._vault.subject_export(sender, actor)
        return SubjectExport(self._vault.pseudonym(sender), values)
