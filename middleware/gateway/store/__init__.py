"""The gateway's own tables, behind one object: `GatewayStore`.

    store = GatewayStore(writer, reader, clock)
    store.messages       history lines, rate counters, the per-message record
    store.conversations  the state row: pending rule, lifecycle, listings
    store.keys           API keys
    store.exports        the export redaction config
    store.ui_sessions    the log viewer's live sessions
    store.outbox         export records waiting for their sinks
    store.message_ids    the channel's message ids (idempotent delivery)
    store.check_budgets  checks asked per reference (declared checks' budget)
    store.transaction()  a transaction on the writer (503 on failure)

Nothing here holds a raw value: history is redacted text, keys are digests.  The writer
is the vault's engine on SQLite (its `BEGIN IMMEDIATE` is what a read-then-write needs)
and a pool of its own on PostgreSQL; the reader never takes a write lock
(`service/readdb.py`).  The vault's own tables are the vault's business.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager

from sqlalchemy import Engine

from coatcheck.middleware.gateway.store.checks import CheckBudgets
from coatcheck.middleware.gateway.store.conversations import Conversations
from coatcheck.middleware.gateway.store.db import Clock, Db, healthy
from coatcheck.middleware.gateway.store.exports import ExportConfigs
from coatcheck.middleware.gateway.store.idempotency import MessageIds
from coatcheck.middleware.gateway.store.keys import ApiKeys, KeyListing, KeyRow, Revoked
from coatcheck.middleware.gateway.store.messages import Messages
from coatcheck.middleware.gateway.store.outbox import Outboxes
from coatcheck.middleware.gateway.store.sessions import UiSessions
from coatcheck.vault import Transaction

__all__ = ["GatewayStore", "KeyListing", "KeyRow", "Revoked", "healthy"]


class GatewayStore:
    """Every table the gateway owns; `reader` defaults to the writer (CLI, tests)."""

    def __init__(
        self, writer: Engine, reader: Engine | None = None, clock: Clock = time.time
    ) -> None:
        self.db = Db(writer, reader if reader is not None else writer, clock)
        self.messages = Messages(self.db)
        self.conversations = Conversations(self.db)
        self.keys = ApiKeys(self.db)
        self.exports = ExportConfigs(self.db)
        self.ui_sessions = UiSessions(self.db)
        self.outbox = Outboxes(self.db)
        self.message_ids = MessageIds(self.db)
        self.check_budgets = CheckBudgets(self.db)

    def __repr__(self) -> str:
        return f"GatewayStore({self.db.writer.dialect.name})"

    @property
    def writer(self) -> Engine:
        return self.db.writer

    @property
    def reader(self) -> Engine:
        return self.db.reader

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A transaction on the writer; failures become `StorageUnavailable`."""
        return self.db.transaction()
