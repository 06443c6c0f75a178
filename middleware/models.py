"""Gateway tables (API keys, conversation state, redacted history, rate counters).

They live on the vault's SQLAlchemy `Base` so one metadata and one migration chain cover
the whole database.  Nothing here ever holds a raw value: history rows hold redacted text,
API keys are stored as SHA-256 digests.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from coatcheck.vault.models import Base

__all__ = [
    "ApiKey",
    "CheckBudget",
    "ConversationState",
    "ExportRedaction",
    "HistoryEntry",
    "IdempotentMessage",
    "LlmPlaceholder",
    "LlmPlaceholderCounter",
    "OutboxRecord",
    "RateCounter",
    "UiSession",
]


class ApiKey(Base):
    """An API key: public prefix id, SHA-256 digest of the whole key, one role."""

    __tablename__ = "gw_api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True, nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)


class ConversationState(Base):
    """Per-conversation gateway state so workers stay stateless: the pending context rule
    and the lifecycle (docs/lifecycle.md).

    `status` is `active`, or after the end what the vault kept: `masked`, `retained`
    (until `retain_until`), `shredded`, or `ended` (nothing was ever vaulted).
    `last_activity` is bumped by the message's own upsert (no extra transaction).
    """

    __tablename__ = "gw_conversation_state"
    __table_args__ = (Index("ix_gw_conversation_state_status_activity", "status", "last_activity"),)

    conversation_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    context_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[float] = mapped_column(Float, nullable=False)
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, default="active", server_default="active"
    )
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_activity: Mapped[float | None] = mapped_column(Float, nullable=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    retain_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The latest secure-capture result the gateway sent the bot, `{"type", "ok", "ref",
    # "at"}`, while it is the conversation's latest user message (NULL otherwise): what
    # `GET /v1/conversations/{id}/capture` answers (docs/actions.md).  Never a value.
    last_capture_json: Mapped[str | None] = mapped_column(Text, nullable=True)


class HistoryEntry(Base):
    """One redacted transcript line; `direction` is "in" (user) or "out" (bot)."""

    __tablename__ = "gw_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True, nullable=False)
    direction: Mapped[str] = mapped_column(String(3), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    # JSON list of {"ref", "type", "rule"} for a user line (references and rule names only).
    entities_json: Mapped[str | None] = mapped_column(Text, nullable=True)


class RateCounter(Base):
    """Messages per sender per fixed window; in the DB so the limit holds across workers."""

    __tablename__ = "gw_rate_counters"
    __table_args__ = (UniqueConstraint("sender", "window_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sender: Mapped[str] = mapped_column(String(255), nullable=False)
    window_start: Mapped[int] = mapped_column(Integer, nullable=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False)


class CheckBudget(Base):
    """Checks asked about one reference (`gateway/checks.py`): the budget holds across
    workers because the count is taken and raised in one conditional UPDATE."""

    __tablename__ = "gw_check_budget"

    conversation_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    used: Mapped[int] = mapped_column(Integer, nullable=False)


class ExportRedaction(Base):
    """The export redaction config, one row per tenant; `version` grows on every change.

    Workers read it per export (one indexed row), so a PUT on any worker applies to the
    next record everywhere without a restart. `config_json` NULL is the privacy-first
    default; it holds field paths only, never record content.
    """

    __tablename__ = "gw_export_config"

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    config_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[float] = mapped_column(Float, nullable=False)


class UiSession(Base):
    """A live log-viewer session, so signing out (or revoking the key) ends it at once.

    The cookie is signed and carries a random nonce; the row holds only the nonce's SHA-256
    (`id`), the API key's public prefix, and the expiry.  A cookie whose row is gone is
    refused, however valid its signature.  Expired rows are dropped at each sign-in.
    """

    __tablename__ = "gw_ui_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_prefix: Mapped[str] = mapped_column(String(16), index=True, nullable=False)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    expires_at: Mapped[float] = mapped_column(Float, index=True, nullable=False)


class OutboxRecord(Base):
    """One export record waiting for one sink (the durable outbox, docs/export.md).

    Written in the transaction that ends the conversation, so an end and its record commit
    together (a crash loses neither); the outbox worker claims due rows with a lease
    (`lease_until`), delivers outside the request path and the database limiter, deletes a
    delivered row, and on failure backs off (`next_attempt_at`) until `max_attempts`, then
    keeps the row as `dead` (a dead letter, requeued by an admin).  `record_json` is the
    filtered record built from redacted history (bare references, never a value);
    `last_error` a sink's reason (a status or an error class name), never content.
    """

    __tablename__ = "gw_export_outbox"
    __table_args__ = (Index("ix_gw_export_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True, nullable=False)
    sink: Mapped[str] = mapped_column(String(64), nullable=False)
    record_json: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    next_attempt_at: Mapped[float] = mapped_column(Float, nullable=False)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)


class IdempotentMessage(Base):
    """A channel's message id, seen once (docs/service.md, "Idempotent delivery").

    `id` is a keyed digest of (channel, conversation, message id): the client's id is never
    stored.  `state` is `pending` from the transaction that records the message until the
    replies are stored (then `done`, with `replies_json`: the bot's replies in reference
    form, as history keeps them, never a revealed value).  A pending row whose worker died
    stays pending: a repeat gets 409, never a second delivery.  Rows older than the window
    are dropped by the sweeper.
    """

    __tablename__ = "gw_idempotency"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[float] = mapped_column(Float, index=True, nullable=False)
    replies_json: Mapped[str | None] = mapped_column(Text, nullable=True)


class LlmPlaceholder(Base):
    """A placeholder of the LLM gateway (`[EMAIL_1]`): (conversation, label, n) -> the
    vault's bare reference id (docs/llm.md, "The placeholder table").

    Both constraints are what make concurrent requests (any worker, any host) agree: a
    number names one reference, a reference has one number per conversation.  No value.
    """

    __tablename__ = "llm_placeholders"
    __table_args__ = (
        UniqueConstraint("tenant", "conversation_id", "ref_id"),
        CheckConstraint("n >= 1", name="n_positive"),
    )

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    label: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ref_id: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)


class LlmPlaceholderCounter(Base):
    """The last number handed out per (conversation, label): its row lock (PostgreSQL) or
    the write lock (SQLite) serialises numbering; a lost race leaves a gap, never a
    duplicate."""

    __tablename__ = "llm_placeholder_counters"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    label: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_n: Mapped[int] = mapped_column(Integer, nullable=False)
