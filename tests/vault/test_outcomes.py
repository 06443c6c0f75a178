"""vault/outcomes.py: the audit text each outcome writes, reading it back, the error table."""

from __future__ import annotations

import pytest

from coatcheck.vault import (
    AuditRecord,
    ConversationEnded,
    ConversationShredded,
    DecryptionError,
    GrantRefused,
    Outcome,
    UnknownReference,
    ValueExpired,
)


@pytest.mark.parametrize(
    ("outcome", "reason", "brief", "detailed"),
    [
        (Outcome.OK, None, "ok", "ok"),
        (Outcome.UNKNOWN, None, "unknown", "unknown"),
        (Outcome.SHREDDED, None, "shredded", "shredded"),
        (Outcome.EXPIRED, None, "expired", "expired"),
        (Outcome.ERROR, None, "error", "error"),
        (Outcome.NOOP, None, "noop", "noop"),
        (Outcome.MASKED, None, "masked", "masked"),
        (Outcome.RETAINED, None, "retained", "retained"),
        (Outcome.REFUSED, "entity_type", "refused", "refused:entity_type"),
        (Outcome.REFUSED, "a" * 40, "refused", "refused:" + "a" * 24),  # the column's 32
        (Outcome.REFUSED, None, "refused", "refused"),
        (Outcome.ENDED, None, "refused", "refused:ended"),
    ],
)
def test_audit_text_is_what_the_chain_always_stored(
    outcome: Outcome, reason: str | None, brief: str, detailed: str
) -> None:
    assert outcome.audit_text(reason) == brief
    assert outcome.audit_text(reason, detailed=True) == detailed
    assert len(outcome.audit_text(reason, detailed=True)) <= 32


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("ok", (Outcome.OK, None)),
        ("noop", (Outcome.NOOP, None)),
        ("refused", (Outcome.REFUSED, None)),
        ("refused:forbidden", (Outcome.REFUSED, "forbidden")),
        ("refused:ended", (Outcome.REFUSED, "ended")),
        ("ended", None),  # ENDED is never written under its own word
        ("ok:extra", None),
        ("forged", None),
    ],
)
def test_from_audit_reads_the_stored_text_back(
    text: str, parsed: tuple[Outcome, str | None] | None
) -> None:
    assert Outcome.from_audit(text) == parsed


def test_every_written_text_reads_back_as_its_outcome() -> None:
    for outcome in Outcome:
        if outcome is not Outcome.ENDED:
            assert Outcome.from_audit(outcome.audit_text()) == (outcome, None)
    assert Outcome.from_audit(Outcome.REFUSED.audit_text("x", detailed=True)) == (
        Outcome.REFUSED,
        "x",
    )


@pytest.mark.parametrize(
    ("outcome", "error"),
    [
        (Outcome.REFUSED, GrantRefused),
        (Outcome.ENDED, ConversationEnded),
        (Outcome.UNKNOWN, UnknownReference),
        (Outcome.SHREDDED, ConversationShredded),
        (Outcome.EXPIRED, ValueExpired),
        (Outcome.ERROR, DecryptionError),
    ],
)
def test_one_table_from_outcome_to_error(outcome: Outcome, error: type[Exception]) -> None:
    raised = outcome.error("7k2m9xq4cw", "entity_type")
    assert type(raised) is error


def test_refusals_carry_their_reason_and_successes_raise_nothing() -> None:
    refused = Outcome.REFUSED.error("7k2m9xq4cw", "entity_type")
    ended = Outcome.ENDED.error("7k2m9xq4cw")
    assert isinstance(refused, GrantRefused) and refused.reason == "entity_type"
    assert isinstance(ended, GrantRefused) and ended.reason == "ended"
    for quiet in (Outcome.OK, Outcome.NOOP, Outcome.MASKED, Outcome.RETAINED):
        assert quiet.error("7k2m9xq4cw") is None


def test_audit_record_kind_and_reason() -> None:
    def record(outcome: str) -> AuditRecord:
        return AuditRecord(1, 0.0, "t", "a", "reveal", None, None, None, None, outcome)

    assert (record("refused:reporting_only").kind, record("refused:reporting_only").reason) == (
        Outcome.REFUSED,
        "reporting_only",
    )
    assert (record("ok").kind, record("ok").reason) == (Outcome.OK, None)
    assert record("tampered").kind is None
