"""What the audit trail shows callers: its records and the chain's verification report.

The chain itself (MAC links, the head, appends, verification) is `vault/_chain.py`: only the
vault appends, through its own operations and `Vault.audit_refusal`, so no caller holds
a way to write rows of its own making.
"""

from __future__ import annotations

from dataclasses import dataclass

from coatcheck.vault.outcomes import Outcome

__all__ = ["AuditRecord", "AuditReport"]


@dataclass(frozen=True)
class AuditRecord:
    """One audit row as stored (never a value); `outcome` is the stored text."""

    id: int
    at: float
    tenant: str
    actor: str
    action: str
    conversation_id: str | None
    ref: str | None
    entity_type: str | None
    purpose: str | None
    outcome: str

    @property
    def kind(self) -> Outcome | None:
        """The outcome without its refusal reason (None: a text the vault never writes)."""
        parsed = Outcome.from_audit(self.outcome)
        return None if parsed is None else parsed[0]

    @property
    def reason(self) -> str | None:
        """A refusal's reason, when the row keeps one (`refused:<reason>`)."""
        parsed = Outcome.from_audit(self.outcome)
        return None if parsed is None else parsed[1]


@dataclass(frozen=True)
class AuditReport:
    """A verification of the chain: whether every row links, the first bad row's id.

    `rows`: the chain is good up to this row id (every row when `ok`); `head`: that row's
    link; `checked`: rows walked by this verification (an incremental one starts at the
    previous good one); `at`: when it ran; `forged`: a stored verification record whose own
    MAC fails (reported as a failure: someone wrote it without the audit key).
    """

    ok: bool
    rows: int
    first_bad: int | None
    at: float | None = None
    head: str | None = None
    checked: int = 0
    forged: bool = False
