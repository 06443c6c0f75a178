"""Gateway tables (API keys, conversation state, redacted history, rate counters).

They live on the vault's SQLAlchemy `Base` so one metadata and one migration chain cover
the whole database.  Nothing here ever holds a raw value: history rows hold redacted text,
API keys are stored as SHA-256 digests.
"""

from __future__ import annotations

from sqlalchemy import Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vault.models import Base

__all__ = ["ApiKey", "ConversationState", "ExportRedaction", "HistoryEntry", "RateCounter"]


class ApiKey(Base):
    """An API key: public prefix id, SHA-256 digest of the whole key, one role."""

    __tablename__ = "gw_api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True, nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)


class ConversationState(Base):
    """Per-conversation gateway state (the pending context rule) so workers stay stateless."""

    __tablename__ = "gw_conversation_state"

    conversation_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    context_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[float] = mapped_column(Float, nullable=False)


class HistoryEntry(Base):
    """One redacted transcript line; `direction` is "in" (user) or "out" (bot)."""

    __tablename__ = "gw_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True, nullable=False)
    direction: Mapped[str] = mapped_column(String(3), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)


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
