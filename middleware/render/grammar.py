"""The reference token grammar (docs/contracts.md): render and parse, one regex."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "DISPLAY_RE",
    "REFERENCE_RE",
    "ParsedReference",
    "format_reference",
    "parse_references",
    "replace_references",
]

REFERENCE_RE = re.compile(r"CC_([A-Z][A-Z0-9_]*)_([0-9a-hjkmnp-tv-z]{10})(?:\(([!-'*-~]*)\))?")
DISPLAY_RE = re.compile(r"[!-'*-~]*")
_TYPE_RE = re.compile(r"[A-Z][A-Z0-9_]*")
_ID_RE = re.compile(r"[0-9a-hjkmnp-tv-z]{10}")


@dataclass(frozen=True, slots=True)
class ParsedReference:
    """One reference found in text; `display` is None when rendered without one."""

    start: int
    end: int
    entity_type: str
    ref_id: str
    display: str | None

    @property
    def reference(self) -> str:
        """The full `CC_<TYPE>_<id>` form the API and slots carry."""
        return f"CC_{self.entity_type}_{self.ref_id}"


def format_reference(entity_type: str, ref_id: str, display: str | None = None) -> str:
    """`CC_<TYPE>_<id>` plus `(<display>)`; refuses anything outside the grammar."""
    if not _TYPE_RE.fullmatch(entity_type):
        raise ValueError("entity_type outside the grammar")
    if not _ID_RE.fullmatch(ref_id):
        raise ValueError("ref_id outside the grammar")
    if display is None:
        return f"CC_{entity_type}_{ref_id}"
    if not DISPLAY_RE.fullmatch(display):
        raise ValueError("display outside the DISPLAY charset")
    return f"CC_{entity_type}_{ref_id}({display})"


def parse_references(text: str) -> list[ParsedReference]:
    """Every reference in `text`, left to right."""
    return [
        ParsedReference(m.start(), m.end(), m.group(1), m.group(2), m.group(3))
        for m in REFERENCE_RE.finditer(text)
    ]


def replace_references(text: str, fn: Callable[[ParsedReference], str]) -> str:
    """Replace each reference by `fn(ref)` (the outbound side: reveal, strip display...)."""
    out: list[str] = []
    last = 0
    for ref in parse_references(text):
        out.append(text[last : ref.start])
        out.append(fn(ref))
        last = ref.end
    out.append(text[last:])
    return "".join(out)
