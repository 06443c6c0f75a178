"""Detection results and the caller's context, as small immutable values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Capture", "Context", "Span"]

Capture = Literal["pattern", "whole"]


@dataclass(frozen=True, slots=True)
class Span:
    """One detected value; start/end index the ORIGINAL text, value is the normalised form."""

    start: int
    end: int
    entity_type: str
    value: str = field(repr=False)
    rule: str
    validated: bool
    score: float

    def __repr__(self) -> str:
        # Never show the value: reprs end up in logs and tracebacks.
        return (
            f"Span(start={self.start}, end={self.end}, entity_type={self.entity_type!r}, "
            f"rule={self.rule!r}, validated={self.validated})"
        )


@dataclass(frozen=True, slots=True)
class Context:
    """What the bot waits for; `capture=None` means the type's configured capture."""

    expect: str
    capture: Capture | None = None
