"""Gateway state in the database: redacted history, pending context rules, rate counters.

Workers keep nothing in memory between requests; everything a second worker needs is
here.  Every database failure becomes `StorageUnavailable` without the driver's message
(SQLAlchemy errors quote bound parameters, which may be user text).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from middleware.models import ConversationState, HistoryEntry, RateCounter
from middleware.service.errors import RateLimited, StorageUnavailable

__all__ = [
    "append_history",
    "check_rate",
    "guarded",
    "peek_context",
    "pop_context",
    "read_history",
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


def append_history(
    session: Session, conversation_id: str, direction: str, text: str, clock: Clock = time.time
) -> None:
    session.add(
        HistoryEntry(
            conversation_id=conversation_id, direction=direction, text=text, created_at=clock()
        )
    )


def read_history(session: Session, conversation_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(HistoryEntry)
        .where(HistoryEntry.conversation_id == conversation_id)
        .order_by(HistoryEntry.id)
    )
    return [{"direction": r.direction, "text": r.text, "at": r.created_at} for r in rows]


def set_context(
    session: Session, conversation_id: str, rule: dict[str, Any] | None, clock: Clock = time.time
) -> None:
    """Store (or clear, with None) the rule for the conversation's next user message."""
    row = session.get(ConversationState, conversation_id)
    payload = None if rule is None else json.dumps(rule, sort_keys=True)
    if row is None:
        session.add(
            ConversationState(
                conversation_id=conversation_id, context_json=payload, updated_at=clock()
            )
        )
    else:
        row.context_json = payload
        row.updated_at = clock()


def peek_context(session: Session, conversation_id: str) -> dict[str, Any] | None:
    """The pending rule, left in place (consumed later with the message's history line)."""
    row = session.get(ConversationState, conversation_id)
    if row is None or row.context_json is None:
        return None
    rule: dict[str, Any] = json.loads(row.context_json)
    return rule


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


def _bump(session: Session, sender: str, start: int) -> int | None:
    stmt = (
        update(RateCounter)
        .where(RateCounter.sender == sender, RateCounter.window_start == start)
        .values(count=RateCounter.count + 1)
        .returning(RateCounter.count)
    )
    return session.scalars(stmt).first()
