"""The shape of a conversation record as it is exported (text already redacted).

The gateway builds one `ConversationRecord` per conversation and hands
`record.model_dump(mode="json")` to `apply_export_config`; the model pins the field names
that export configs address with dotted paths.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ConversationRecord", "EntityRef", "Turn"]


class EntityRef(BaseModel):
    """A detected entity as a reference; the value stays in the vault."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    ref: str


class Turn(BaseModel):
    """One message of the conversation, in reference form."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    direction: Literal["user", "bot"]
    text: str
    entities: list[EntityRef] = Field(default_factory=list)
    at: datetime


class ConversationRecord(BaseModel):
    """A conversation (active, or ended under its retention outcome), ready for export filtering."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    conversation_id: str
    tenant: str
    started_at: datetime
    ended_at: datetime | None = None
    status: Literal["active", "ended", "masked", "retained", "shredded"]
    channel: str | None = None
    turns: list[Turn] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)
