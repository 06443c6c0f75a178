"""Activity tracking rides on the message's existing write: no extra transaction per message."""

from __future__ import annotations

from typing import Any

from gateway_helpers import Service, StubBot
from lifecycle_helpers import EMAIL, say_refs
from sqlalchemy import event


def test_one_message_still_costs_the_same_transactions(life: Service, stub_bot: StubBot) -> None:
    gw = life.services
    say_refs(life, stub_bot, "hot", "warm up")  # first message: vault epoch, state row
    transactions: list[list[str]] = []

    def begin(_conn: Any) -> None:
        transactions.append([])

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if transactions:
            transactions[-1].append(" ".join(sql.split()))

    engines = {id(e): e for e in (gw.engine, gw.store.writer)}.values()  # one on SQLite
    for engine in engines:
        event.listen(engine, "begin", begin)
        event.listen(engine, "before_cursor_execute", statement)
    try:
        life.clock.now += 5
        say_refs(life, stub_bot, "hot", f"mail {EMAIL}")
    finally:
        for engine in engines:
            event.remove(engine, "begin", begin)
            event.remove(engine, "before_cursor_execute", statement)
    # Two write transactions per message: the vault's tokenize, which also carries the
    # gateway's inbound record (the sender's rate counter, the history line with the state
    # upsert: on PostgreSQL as a CTE of the history INSERT; the count of the live epoch's
    # values, the per-conversation cap; last the channel key's counter, the one row every
    # message of the key updates), and the reply lines.
    assert len(transactions) == 2
    inbound, replies = transactions
    assert any(sql.startswith("INSERT INTO stored_values") for sql in inbound), inbound
    rate = [i for i, sql in enumerate(inbound) if sql.startswith("INSERT INTO gw_rate_counters")]
    history = [i for i, sql in enumerate(inbound) if "INSERT INTO gw_history" in sql]
    assert len(rate) == 2 and len(history) == 1 and rate[0] < history[0] < rate[1]
    assert inbound[-2].startswith("SELECT count(*)"), inbound  # the cap
    assert inbound[-1].startswith("INSERT INTO gw_rate_counters")  # the key's row, last
    if gw.store.writer.dialect.name == "postgresql":
        assert inbound[history[0]].startswith("WITH touch AS (INSERT INTO gw_conversation_state")
    else:
        assert inbound[history[0] - 1].startswith("INSERT INTO gw_conversation_state")
    assert [sql.split(" (")[0] for sql in replies] == ["INSERT INTO gw_history"]
    [item] = gw.records.list_conversations(search=life.cid("hot"))
    assert item["last_activity"] == life.clock.now
