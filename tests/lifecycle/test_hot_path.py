"""Activity tracking rides on the message's existing write: no extra transaction per message."""

from __future__ import annotations

from typing import Any

from gateway_helpers import Service, StubBot
from lifecycle_helpers import EMAIL, say_refs
from sqlalchemy import event

from middleware.service.staff import list_conversations


def test_one_message_still_costs_the_same_transactions(life: Service, stub_bot: StubBot) -> None:
    gw = life.gateway
    say_refs(life, stub_bot, "hot", "warm up")  # first message: vault epoch, state row
    transactions: list[list[str]] = []

    def begin(_conn: Any) -> None:
        transactions.append([])

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if transactions:
            transactions[-1].append(" ".join(sql.split()))

    event.listen(gw.writer, "begin", begin)
    event.listen(gw.writer, "before_cursor_execute", statement)
    try:
        life.clock.now += 5
        say_refs(life, stub_bot, "hot", f"mail {EMAIL}")
    finally:
        event.remove(gw.writer, "begin", begin)
        event.remove(gw.writer, "before_cursor_execute", statement)
    if gw.writer.dialect.name == "postgresql":
        # The gateway's own pool: the inbound record (rate counter, then the history line
        # with the state upsert as a CTE: ONE statement) and the reply lines.
        assert [len(t) for t in transactions] == [2, 1]
        assert transactions[0][0].startswith("INSERT INTO gw_rate_counters")
        assert transactions[0][1].startswith("WITH touch AS (INSERT INTO gw_conversation_state")
        assert "INSERT INTO gw_history" in transactions[0][1]
    else:
        # SQLite shares the vault's engine: tokenize, the inbound record, the replies.
        assert len(transactions) == 3
    [item] = list_conversations(gw, search="hot")
    assert item["last_activity"] == life.clock.now
