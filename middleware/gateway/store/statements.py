"""The gateway's tables and the statements of the per-message path, built once.

Prebuilt with bind parameters and run on the driver (the vault's `Statement`): building them per
message was a third of the record's cost, SQLAlchemy's execute path most of the rest.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from sqlalchemy import Insert, Table, bindparam, case, func, insert, select
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.elements import BindParameter

from coatcheck.middleware.models import (
    ApiKey,
    CheckBudget,
    ConversationState,
    ExportRedaction,
    HistoryEntry,
    IdempotentMessage,
    OutboxRecord,
    RateCounter,
    UiSession,
)
from coatcheck.vault import Statement
from coatcheck.vault.models import Base, Conversation, StoredValue

__all__ = [
    "CHECKS",
    "EXPORT",
    "HISTORY",
    "IDEMPOTENCY",
    "KEYS",
    "LIVE_VALUES",
    "OUTBOX",
    "RATE",
    "READ_STATE",
    "REPLY_LINES",
    "SESSIONS",
    "STATE",
    "count_statement",
    "dialect_insert",
    "new_state_row",
    "record_statements",
]


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


STATE = _table(ConversationState)
HISTORY = _table(HistoryEntry)
RATE = _table(RateCounter)
KEYS = _table(ApiKey)
EXPORT = _table(ExportRedaction)
SESSIONS = _table(UiSession)
OUTBOX = _table(OutboxRecord)
IDEMPOTENCY = _table(IdempotentMessage)
CHECKS = _table(CheckBudget)


def dialect_insert(dialect: str, table: Table) -> PgInsert | SqliteInsert:
    """An INSERT in `dialect`'s flavour (for ON CONFLICT)."""
    return pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)


def new_state_row(
    dialect: str, conversation_id: Any, now: Any, **columns: Any
) -> PgInsert | SqliteInsert:
    """INSERT of a conversation's first state row, in `dialect`'s flavour (for ON CONFLICT).

    One place for what a new conversation starts with (active, started and seen `now`, no
    rule), so every writer that may create the row agrees; `columns` override or add
    (a rule, an ended row).  Values may be bind parameters (prebuilt statements).
    """
    values = {
        "conversation_id": conversation_id,
        "context_json": None,
        "last_capture_json": None,
        "updated_at": now,
        "status": "active",
        "started_at": now,
        "last_activity": now,
        **columns,
    }
    return dialect_insert(dialect, STATE).values(**values)


def _touch(dialect: str, consume: bool) -> Insert:
    """Upsert of the conversation's state for a new message: active, seen now.

    An ended conversation that gets a message is reopened (a new session: new
    `started_at`; the vault opens a new key epoch for its values).  `capture` is the
    secure-capture result this message carries to the bot, NULL for any other message:
    so the record is never older than the conversation's latest user message.
    """
    now: BindParameter[float] = bindparam("now")
    capture: BindParameter[str | None] = bindparam("capture")
    stmt = new_state_row(dialect, bindparam("cid"), now, last_capture_json=capture)
    still_active = (STATE.c.status == "active") & STATE.c.started_at.is_not(None)
    changes: dict[str, Any] = {
        "updated_at": now,
        "last_activity": now,
        "status": "active",
        "started_at": case((still_active, STATE.c.started_at), else_=now),
        "ended_at": None,
        "end_reason": None,
        "retain_until": None,
        "last_capture_json": capture,
    }
    if consume:
        changes["context_json"] = None
    return stmt.on_conflict_do_update(index_elements=[STATE.c.conversation_id], set_=changes)


@functools.cache
def record_statements(dialect: str, consume: bool) -> tuple[Statement, ...]:
    """The touch upsert and the history INSERT (`cid`, `now`, `text`, `entities`,
    `capture`).

    On PostgreSQL the upsert is a data-modifying CTE of the history INSERT (one round-trip
    for both); on SQLite, where a statement costs no round-trip, it runs just before it.
    """
    line = insert(HISTORY).values(
        conversation_id=bindparam("cid"),
        direction="in",
        text=bindparam("text"),
        created_at=bindparam("now"),
        entities_json=bindparam("entities"),
    )
    touch = _touch(dialect, consume)
    if dialect == "postgresql":
        return (Statement(line.add_cte(touch.cte("touch"))),)
    return (Statement(touch), Statement(line))


@functools.cache
def count_statement(dialect: str) -> Statement:
    """The rate counter's bump-or-create upsert (`sender`: the rate key, `start`)."""
    return Statement(
        dialect_insert(dialect, RATE)
        .values(sender=bindparam("sender"), window_start=bindparam("start"), count=1)
        .on_conflict_do_update(
            index_elements=[RATE.c.sender, RATE.c.window_start],
            set_={"count": RATE.c.count + 1},
        )
        .returning(RATE.c.count)
    )


REPLY_LINES = Statement(
    insert(HISTORY).values(
        conversation_id=bindparam("cid"),
        direction="out",
        text=bindparam("text"),
        created_at=bindparam("now"),
    )
)

# The pending rule (by conversation) and this window's counts (the rate key's, the API
# key's), one round-trip.
READ_STATE = Statement(
    select(
        select(STATE.c.context_json)
        .where(STATE.c.conversation_id == bindparam("cid"))
        .scalar_subquery()
        .label("context_json"),
        select(RATE.c.count)
        .where(RATE.c.sender == bindparam("sender"), RATE.c.window_start == bindparam("start"))
        .scalar_subquery()
        .label("count"),
        select(RATE.c.count)
        .where(RATE.c.sender == bindparam("key"), RATE.c.window_start == bindparam("kstart"))
        .scalar_subquery()
        .label("key_count"),
    )
)

_EPOCHS = _table(Conversation)
_VALUES = _table(StoredValue)

# How many values the conversation's live key epoch holds (`tenant`, `cid`): the
# per-conversation cap, checked in the message's own transaction.
LIVE_VALUES = Statement(
    select(func.count().label("held"))
    .select_from(_VALUES)
    .where(
        _VALUES.c.conversation_pk.in_(
            select(_EPOCHS.c.id).where(
                _EPOCHS.c.tenant == bindparam("tenant"),
                _EPOCHS.c.conversation_id == bindparam("cid"),
                _EPOCHS.c.ended_at.is_(None),
            )
        )
    )
)
