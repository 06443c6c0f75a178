"""The reference token grammar of docs/contracts.md, parsed on the action-server side.

A private copy: `actions/` must not import `middleware/` (it runs in the action-server
process), so the one regex lives here too until both sides share a tiny module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["REFERENCE_RE", "Reference", "find_references", "is_reference", "parse_reference"]

REFERENCE_RE = re.compile(r"CC_([A-Z][A-Z0-9_]*)_([0-9a-hjkmnp-tv-z]{10})(?:\(([!-'*-~]*)\))?")


@dataclass(frozen=True)
class Reference:
    """One reference found in text: its full form, entity type and where it sits."""

    token: str
    entity_type: str
    start: int
    end: int

    def __repr__(self) -> str:
        return f"Reference({self.token!r})"


def find_references(text: str) -> list[Reference]:
    """Every reference in `text`, display suffix excluded from `token`."""
    found: list[Reference] = []
    for match in REFERENCE_RE.finditer(text):
        token = f"CC_{match.group(1)}_{match.group(2)}"
        found.append(Reference(token, match.group(1), match.start(), match.end()))
    return found


def parse_reference(value: object) -> Reference | None:
    """The reference when `value` is exactly one (optionally with its display form)."""
    if not isinstance(value, str):
        return None
    match = REFERENCE_RE.fullmatch(value.strip())
    if match is None:
        return None
    token = f"CC_{match.group(1)}_{match.group(2)}"
    return Reference(token, match.group(1), 0, len(value))


def is_reference(value: object, entity_type: str | None = None) -> bool:
    """True when `value` is a single reference (of `entity_type`, when given).

    Validators use it to accept a vaulted value instead of rejecting the token as
    malformed input.
    """
    ref = parse_reference(value)
    return ref is not None and (entity_type is None or ref.entity_type == entity_type)
