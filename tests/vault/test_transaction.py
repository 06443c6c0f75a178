"""The `Transaction` handle: a caller's own rows commit and roll back with the vault's.

The caller's table here is one the test creates (the gateway's history plays that part in
production); the vault's work and the caller's share one transaction both ways: the
caller's rows ride in `tokenize_many(then=...)`, and `end` / `holdings` run inside a
transaction the caller opened with `transaction(engine)`.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, func, insert, select

from coatcheck.vault import (
    Grant,
    Statement,
    Transaction,
    UnknownReference,
    Vault,
    transaction,
)
from tests.conftest import FakeClock

_CALLER = Table(
    "caller_rows",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("note", String(64)),
)
_NOTE = Statement(insert(_CALLER), ["note"])


class Boom(Exception):
    pass


@pytest.fixture
def caller_table(engine: Engine) -> Engine:
    _CALLER.create(engine)
    return engine


def _notes(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(_CALLER.c.note).order_by(_CALLER.c.id)).scalars())


def test_then_rows_commit_with_the_values(vault: Vault, caller_table: Engine) -> None:
    def then(tx: Transaction, refs: list[str]) -> None:
        tx.execute(insert(_CALLER).values(note=f"core {refs[0]}"))
        tx.rowcount(_NOTE, {"note": f"prebuilt {tx.dialect}"})

    [ref] = vault.tokenize_many("c1", [("EMAIL", "a@x.io")], then=then)
    assert _notes(caller_table) == [f"core {ref}", f"prebuilt {caller_table.dialect.name}"]


def test_then_raising_rolls_the_values_back(
    vault: Vault, caller_table: Engine, clock: FakeClock
) -> None:
    seen: list[str] = []

    def then(tx: Transaction, refs: list[str]) -> None:
        tx.many(_NOTE, [{"note": "first"}, {"note": "second"}])
        seen.extend(refs)
        raise Boom()

    with pytest.raises(Boom):
        vault.tokenize_many("c1", [("EMAIL", "a@x.io")], then=then)
    assert _notes(caller_table) == []
    with pytest.raises(UnknownReference):
        vault.lookup("c1", seen[0])  # the value went with the caller's rows


def test_end_joins_the_callers_transaction(
    vault: Vault, caller_table: Engine, clock: FakeClock
) -> None:
    ref = vault.tokenize("c1", "EMAIL", "a@x.io")
    with pytest.raises(Boom), transaction(caller_table) as tx:
        tx.rowcount(_NOTE, {"note": "ended"})
        assert vault.end("c1", "bot", "api", tx=tx).ended_epochs == 1
        assert not vault.holdings("c1", tx=tx).live  # seen inside the transaction
        raise Boom()
    assert _notes(caller_table) == [] and vault.holdings("c1").live  # both rolled back
    grant = Grant("c1", frozenset({"EMAIL"}), "p", "bot", clock.now + 30)
    assert vault.reveal("c1", ref, grant) == "a@x.io"

    with transaction(caller_table) as tx:
        vault.end("c1", "bot", "api", tx=tx)
        (count,) = tx.scalars(Statement(select(func.count().label("n")).select_from(_CALLER)), {})
    assert count == 0 and not vault.holdings("c1").live
    assert [r.outcome for r in vault.audit_rows(action="end")] == ["shredded"]


def test_the_handle_offers_no_transaction_control(vault: Vault, engine: Engine) -> None:
    with transaction(engine) as tx:
        for name in ("commit", "rollback", "begin_nested", "connection", "close", "engine"):
            assert not hasattr(tx, name)
        assert repr(tx) == f"Transaction(dialect={engine.dialect.name!r})"


def test_refusals_from_outside_are_chained_by_the_vault(vault: Vault) -> None:
    vault.audit_refusal(
        actor="viewer:key:" + "k" * 300,
        action="reveal",
        reason="forbidden",
        conversation_id="c1",
        ref="7k2m9xq4cw",
        entity_type="EMAIL",
    )
    vault.audit_refusal(actor="bot:key:abc", action="grant", reason="x" * 40)
    newest, first = vault.audit_rows()
    assert (first.outcome, first.kind, first.reason) == (
        "refused:forbidden",
        "refused",
        "forbidden",
    )
    assert len(first.actor) == 255 and (first.conversation_id, first.ref) == ("c1", "7k2m9xq4cw")
    assert newest.outcome == ("refused:" + "x" * 40)[:32] and newest.conversation_id is None
    assert vault.verify_audit().ok
