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
    "ConversationState",
    "ExportRedaction",
    "HistoryEntry",
    "LlmPlaceholder",
    "LlmPlaceholderCounter",
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
