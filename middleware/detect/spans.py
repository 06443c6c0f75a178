"""Detection results and the caller's context, as small immutable values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, final

__all__ = ["Capture", "Context", "Span"]

Capture = Literal["pattern", "whole"]


@final
class Span:
    """One detected value; start/end index the ORIGINAL text, value is the normalised form.

    Several are made per message: a plain class with read-only (`Final`) attributes, which
    the compiled build makes a native object built without a Python call (a frozen
    dataclass's `__init__` is interpreted, one `object.__setattr__` per field)."""

    __slots__ = ("end", "entity_type", "rule", "score", "start", "validated", "value")

    def __init__(
        self,
        start: int,
        end: int,
        entity_type: str,
        value: str,
        rule: str,
        validated: bool,
        score: float,
    ) -> None:
        self.start: Final = start
        self.end: Final = end
        self.entity_type: Final = entity_type
        self.value: Final = value
        self.rule: Final = rule
        self.validated: Final = validated
        self.score: Final = score

    def _fields(self) -> tuple[int, int, str, str, str, bool, float]:
        return (
            self.start,
            self.end,
            self.entity_type,
            self.value,
            self.rule,
            self.validated,
            self.score,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Span) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

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
