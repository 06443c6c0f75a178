"""Gateway state in the database: redacted history, pending context rules, rate counters.

Workers keep nothing in memory between requests; everything a second worker needs is
here.  Every database failure becomes `StorageUnavailable` without the driver's message
(SQLAlchemy errors quote bound parameters, which may be user text).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Table,
    bindparam,
    case,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import BindParameter

from coatcheck.middleware.models import ConversationState, HistoryEntry, RateCounter
from coatcheck.middleware.service.errors import RateLimited, StorageUnavailable
from coatcheck.vault import Statement, Transaction, transaction
from coatcheck.vault.models import Base

__all__ = [
    "append_history",
    "check_rate",
    "guarded",
    "guarded_conn",
    "guarded_tx",
    "new_state_row",
    "peek_context",
    "pop_context",
    "read_history",
    "read_state",
    "record_message",
    "record_replies",
    "refuse_over_limit",
    "set_context",
]

Clock = Callable[[], float]


@contextmanager
def guarded(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session committed on success; any DB failure turns into `StorageUnavailable`."""
    try:
        with factory.begin() as session:
            yield session
    except SQLAlchemyError:
        raise StorageUnavailable("database") from None


@contextmanager
def guarded_conn(engine: Engine) -> Iterator[Connection]:
    """A Core connection in a transaction (no ORM unit of work), failures as 503."""
    try:
        with engine.begin() as conn:
            yield conn
    except SQLAlchemyError:
        raise StorageUnavailable("database") from None


@contextmanager
def guarded_tx(engine: Engine) -> Iterator[Transaction]:
    """A vault `Transaction` on `engine` (for statements shared with the vault's
    transactions, and for vault calls that join the gateway's), failures as 503."""
    try:
        with transaction(engine) as tx:
            yield tx
    except SQLAlchemyError:
        raise StorageUnavailable("database") from None


def record_message(
    tx: Transaction,
    conversation_id: str,
    text: str,
    limits: tuple[int, int],
    consume: bool,
    clock: Clock = time.time,
    entities: str | None = None,
) -> None:
    """Count the message, touch the conversation (consuming the rule it used), store its line.

    Core statements in the caller's one transaction: an upsert that bumps the rate counter
    (raising `RateLimited`, which rolls everything back, past the limit), then the history
    row with the conversation's state upsert riding along: `last_activity` (for the idle
    timeout), a reopen if the conversation had ended, the consumed rule cleared.  On
    PostgreSQL the upsert is a data-modifying CTE of the history INSERT (one round-trip for
    both); on SQLite, where a statement costs no round-trip, it runs just before it.
    Called per message, so it avoids the ORM.
    """
    limit, window = limits
    now = clock()
    start = int(now // window) * window
    if _upsert_count(tx, conversation_id, start) > limit:
        raise RateLimited(retry_after=max(1, int(start + window - now)), name="sender")
    params = {"cid": conversation_id, "now": now, "text": text, "entities": entities}
    for stmt in _record_statements(tx.dialect, consume):
        tx.rowcount(stmt, params)


@functools.cache
def _record_statements(dialect: str, consume: bool) -> tuple[Statement, ...]:
    """The touch upsert and the history INSERT, built once per (dialect, consume).

    Prebuilt with bind parameters (`cid`, `now`, `text`, `entities`) and run on the
    driver (the vault's `Statement`): building them per message was a third of the record's cost,
    SQLAlchemy's execute path most of the rest.
    """
    line = insert(_table(HistoryEntry)).values(
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


def new_state_row(
    dialect: str, conversation_id: Any, now: Any, **columns: Any
) -> PgInsert | SqliteInsert:
    """INSERT of a conversation's first state row, in `dialect`'s flavour (for ON CONFLICT).

    One place for what a new conversation starts with (active, started and seen `now`, no
    rule), so every writer that may create the row agrees; `columns` override or add
    (a rule, an ended row).  Values may be bind parameters (prebuilt statements).
    """
    table = _table(ConversationState)
    values = {
        "conversation_id": conversation_id,
        "context_json": None,
        "updated_at": now,
        "status": "active",
        "started_at": now,
        "last_activity": now,
        **columns,
    }
    if dialect == "postgresql":
        return pg_insert(table).values(**values)
    return sqlite_insert(table).values(**values)


def _touch(dialect: str, consume: bool) -> Insert:
    """Upsert of the conversation's state for a new message: active, seen now.

    An ended conversation that gets a message is reopened (a new session: new
    `started_at`; the vault opens a new key epoch for its values).
    """
    state = _table(ConversationState)
    now: BindParameter[float] = bindparam("now")
    stmt = new_state_row(dialect, bindparam("cid"), now)
    still_active = (state.c.status == "active") & state.c.started_at.is_not(None)
    changes: dict[str, Any] = {
        "updated_at": now,
        "last_activity": now,
        "status": "active",
        "started_at": case((still_active, state.c.started_at), else_=now),
        "ended_at": None,
        "end_reason": None,
        "retain_until": None,
    }
    if consume:
        changes["context_json"] = None
    return stmt.on_conflict_do_update(index_elements=[state.c.conversation_id], set_=changes)


def record_replies(
    tx: Transaction,
    conversation_id: str,
    lines: list[str],
    rule: dict[str, Any] | None,
    clock: Clock = time.time,
) -> None:
    """Store the bot's reference-form lines and, if it set one, the next message's rule."""
    now = clock()
    if lines:
        tx.many(_REPLY_LINES, [{"cid": conversation_id, "now": now, "text": t} for t in lines])
    if rule is not None:
        table = _table(ConversationState)
        payload = json.dumps(rule, sort_keys=True)
        stmt = new_state_row(tx.dialect, conversation_id, now, context_json=payload)
        tx.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.c.conversation_id],
                set_={"context_json": payload, "updated_at": now},
            )
        )


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


_REPLY_LINES = Statement(
    insert(_table(HistoryEntry)).values(
        conversation_id=bindparam("cid"),
        direction="out",
        text=bindparam("text"),
        created_at=bindparam("now"),
    )
)


def _upsert_count(tx: Transaction, sender: str, start: int) -> int:
    stmt = _count_statement(tx.dialect)
    (count,) = tx.scalars(stmt, {"sender": sender, "start": start})
    return int(count)


@functools.cache
def _count_statement(dialect: str) -> Statement:
    """The rate counter's bump-or-create upsert, built once per dialect (bind parameters)."""
    table = _table(RateCounter)
    dialect_insert = sqlite_insert if dialect == "sqlite" else pg_insert
    return Statement(
        dialect_insert(table)
        .values(sender=bindparam("sender"), window_start=bindparam("start"), count=1)
        .on_conflict_do_update(
            index_elements=[table.c.sender, table.c.window_start],
            set_={"count": table.c.count + 1},
        )
        .returning(table.c.count)
    )


def append_history(
    session: Session,
    conversation_id: str,
    direction: str,
    text: str,
    clock: Clock = time.time,
    entities: str | None = None,
) -> None:
    session.add(
        HistoryEntry(
            conversation_id=conversation_id,
            direction=direction,
            text=text,
            created_at=clock(),
            entities_json=entities,
        )
    )


def read_history(session: Session, conversation_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(HistoryEntry)
        .where(HistoryEntry.conversation_id == conversation_id)
        .order_by(HistoryEntry.id)
    )
    return [
        {
            "direction": r.direction,
            "text": r.text,
            "at": r.created_at,
            "entities": json.loads(r.entities_json) if r.entities_json else [],
        }
        for r in rows
    ]


def set_context(
    session: Session,
    conversation_id: str,
    rule: dict[str, Any] | None,
    clock: Clock = time.time,
    *,
    touch: bool = False,
) -> None:
    """Store (or clear, with None) the rule for the conversation's next user message.

    A new row starts the conversation; `touch` also counts a user message as activity.
    """
    row = session.get(ConversationState, conversation_id)
    payload = None if rule is None else json.dumps(rule, sort_keys=True)
    now = clock()
    if row is None:
        session.add(
            ConversationState(
                conversation_id=conversation_id,
                context_json=payload,
                updated_at=now,
                status="active",
                started_at=now,
                last_activity=now,
            )
        )
    else:
        row.context_json = payload
        row.updated_at = now
        if touch:
            row.last_activity = now


def peek_context(session: Session, conversation_id: str) -> dict[str, Any] | None:
    """The pending rule, left in place (consumed later with the message's history line)."""
    row = session.get(ConversationState, conversation_id)
    if row is None or row.context_json is None:
        return None
    rule: dict[str, Any] = json.loads(row.context_json)
    return rule


def read_state(
    reader: Engine, conversation_id: str, window: int, clock: Clock = time.time
) -> tuple[dict[str, Any] | None, int]:
    """The pending rule and this window's message count, read without any write lock.

    One round-trip (two indexed scalar subqueries) on the read-only engine; the count is
    only a pre-check (the authoritative bump happens with the message's history line).
    """
    start = int(clock() // window) * window
    try:
        with transaction(reader) as tx:
            ((context, count),) = tx.rows(_READ_STATE, {"cid": conversation_id, "start": start})
    except SQLAlchemyError:
        raise StorageUnavailable("database") from None
    rule: dict[str, Any] | None = None if context is None else json.loads(context)
    return rule, int(count or 0)


# Built once (bind parameters) and run on the driver: read per message.
_READ_STATE = Statement(
    select(
        select(ConversationState.context_json)
        .where(ConversationState.conversation_id == bindparam("cid"))
        .scalar_subquery()
        .label("context_json"),
        select(RateCounter.count)
        .where(
            RateCounter.sender == bindparam("cid"), RateCounter.window_start == bindparam("start")
        )
        .scalar_subquery()
        .label("count"),
    )
)


def pop_context(session: Session, conversation_id: str) -> dict[str, Any] | None:
    """The pending rule, consumed (a rule applies to one message only)."""
    row = session.get(ConversationState, conversation_id, with_for_update=True)
    if row is None or row.context_json is None:
        return None
    rule: dict[str, Any] = json.loads(row.context_json)
    row.context_json = None
    return rule


def check_rate(
    session: Session, sender: str, limit: int, window: int, clock: Clock = time.time
) -> None:
    """Count one message for `sender`; raise `RateLimited` past `limit` in the window.

    A fixed window counted in the database, so the limit holds across workers and hosts.
    """
    now = clock()
    start = int(now // window) * window
    count = _bump(session, sender, start)
    if count is None:
        try:
            with session.begin_nested():
                session.add(RateCounter(sender=sender, window_start=start, count=1))
            count = 1
        except IntegrityError:  # another worker inserted the row first
            count = _bump(session, sender, start) or 1
    if count > limit:
        raise RateLimited(retry_after=max(1, int(start + window - now)), name="sender")


def refuse_over_limit(count: int, limit: int, window: int, clock: Clock = time.time) -> None:
    """Raise `RateLimited` when `count` messages already fill the window (a pre-check)."""
    if count >= limit:
        now = clock()
        start = int(now // window) * window
        raise RateLimited(retry_after=max(1, int(start + window - now)), name="sender")


def _bump(session: Session, sender: str, start: int) -> int | None:
    stmt = (
        update(RateCounter)
        .where(RateCounter.sender == sender, RateCounter.window_start == start)
        .values(count=RateCounter.count + 1)
        .returning(RateCounter.count)
    )
    return session.scalars(stmt).first()
