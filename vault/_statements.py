"""The vault's hot statements, built once: the tables, the reads and inserts of every call.

Why built once: SQLAlchemy then reuses their memoised cache keys and compiled forms,
which was most of the per-call cost of building them afresh, and the one-value forms run
on the DB-API cursor (`_driver.Statement`: SQLAlchemy's execute path cost ten times
SQLite's own work for them).  Statements whose shape depends on the dialect (row locks
on PostgreSQL, the dialect's `INSERT ... ON CONFLICT`) are built once per dialect in
`for_dialect`.  Cold paths (end, expiry, shred, holdings, rotation) build their few
statements next to their only user.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Executable, Select, Table, bindparam, insert, select
from sqlalchemy.dialects import postgresql as _pg_dialect
from sqlalchemy.dialects import sqlite as _sqlite_dialect

from coatcheck.vault import _driver
from coatcheck.vault.models import Conversation, Kek, StoredValue

__all__ = [
    "CONV",
    "FIND",
    "FIND_ONE",
    "INSERT_VALUES",
    "KEK",
    "KNOWN",
    "LIVE_COLS",
    "ROW_BY_ROW_PG",
    "VAL",
    "DialectStatements",
    "for_dialect",
]

CONV = cast(Table, Conversation.__table__)
VAL = cast(Table, StoredValue.__table__)
KEK = cast(Table, Kek.__table__)

# On PostgreSQL each statement is a round trip: up to this many new values go row by row
# (no SQLAlchemy execute path), more go as one multi-row INSERT.
ROW_BY_ROW_PG = 4

_FIND_FROM = (
    select(
        VAL.c.ref,
        VAL.c.entity_type,
        VAL.c.ciphertext,
        VAL.c.created_at,
        VAL.c.status,
        VAL.c.expires_at,
        CONV.c.id,
        CONV.c.epoch,
        CONV.c.kek_id,
        CONV.c.kek_version,
        CONV.c.wrapped_dek,
        CONV.c.ended_at,
    )
    .join(CONV, CONV.c.id == VAL.c.conversation_pk)
    .where(CONV.c.tenant == bindparam("tenant"), CONV.c.conversation_id == bindparam("cid"))
    .order_by(CONV.c.epoch.desc())
)
# References with their epoch, newest epoch first (so a shred elsewhere shows at once).
FIND = _FIND_FROM.where(VAL.c.ref.in_(bindparam("refs", expanding=True)))
# One reference (the common reveal): `=` instead of an expanding IN, run on the driver.
FIND_ONE = _driver.Statement(_FIND_FROM.where(VAL.c.ref == bindparam("ref")))
# Values already stored in an epoch, by blind index.
KNOWN = select(VAL.c.ref, VAL.c.entity_type, VAL.c.blind_index, VAL.c.expires_at).where(
    VAL.c.conversation_pk == bindparam("pk"),
    VAL.c.blind_index.in_(bindparam("indexes", expanding=True)),
)
LIVE_COLS = (
    CONV.c.id,
    CONV.c.epoch,
    CONV.c.kek_id,
    CONV.c.kek_version,
    CONV.c.wrapped_dek,
    CONV.c.ended_at,
)
# The newest epoch, live or shredded, read in ONE statement: reading "the live epoch" and
# then "the highest epoch" separately let a worker miss a live epoch committed between the
# two reads (READ COMMITTED) and open a second epoch beside it.
_LATEST = (
    select(*LIVE_COLS)
    .where(CONV.c.tenant == bindparam("tenant"), CONV.c.conversation_id == bindparam("cid"))
    .order_by(CONV.c.epoch.desc())
    .limit(1)
)
_STILL_LIVE = select(CONV.c.id).where(
    CONV.c.id == bindparam("pk"),
    CONV.c.wrapped_dek == bindparam("wrapped"),
    CONV.c.ended_at.is_(None),
)
INSERT_VALUES = insert(VAL)
_VALUE_COLS = (
    "conversation_pk",
    "ref",
    "entity_type",
    "blind_index",
    "ciphertext",
    "created_at",
    "expires_at",
)


@dataclass(frozen=True)
class DialectStatements:
    """The statements whose SQL depends on the dialect.

    `latest` / `still_live` lock the epoch row FOR SHARE on PostgreSQL (a concurrent shred
    waits or wins); SQLite's BEGIN IMMEDIATE serialises writers anyway.  `insert_new`
    (multi-row) and `insert_one` (one value, liveness check in the same statement: INSERT
    ... SELECT ... WHERE EXISTS (live epoch) ON CONFLICT DO NOTHING RETURNING ref) need the
    dialect's ON CONFLICT; None on a dialect without one (tokenize then always takes the
    locking path).
    """

    latest: Select[Any]
    still_live: Select[Any]
    insert_new: Executable | None
    insert_one: _driver.Statement | None


@functools.cache
def for_dialect(name: str) -> DialectStatements:
    """Built once per dialect name, shared by every vault of the process."""
    pg = name == "postgresql"
    latest = _LATEST.with_for_update(read=True) if pg else _LATEST
    still_live = _STILL_LIVE.with_for_update(read=True) if pg else _STILL_LIVE
    dialect = {"postgresql": _pg_dialect, "sqlite": _sqlite_dialect}.get(name)
    if dialect is None:
        return DialectStatements(latest, still_live, None, None)
    insert_new = dialect.insert(VAL).on_conflict_do_nothing().returning(VAL.c.ref)
    one = select(*(bindparam(c, type_=VAL.c[c].type) for c in _VALUE_COLS)).where(
        still_live.exists()
    )
    insert_one = _driver.Statement(
        dialect.insert(VAL)
        .from_select(list(_VALUE_COLS), one)
        .on_conflict_do_nothing()
        .returning(VAL.c.ref)
    )
    return DialectStatements(latest, still_live, insert_new, insert_one)
