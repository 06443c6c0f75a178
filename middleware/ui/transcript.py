"""Split redacted history text into plain runs and reference chips (pure; no values).

History holds only reference form (`CC_<TYPE>_<id>(<display>)`), so the chips are built
by parsing the text with the one token grammar: type, reference and display form.  The
rule that fired is not recorded in history (see docs/ui.md), so chips say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from middleware.render import parse_references

__all__ = ["Chip", "Segment", "day_bounds", "fmt_time", "segments"]


@dataclass(frozen=True)
class Chip:
    entity_type: str
    reference: str
    display: str | None
    rule: str | None = None  # history does not record it (yet)


Segment = str | Chip


def segments(text: str) -> list[Segment]:
    """`text` as alternating plain strings and chips, in order."""
    out: list[Segment] = []
    last = 0
    for ref in parse_references(text):
        if ref.start > last:
            out.append(text[last : ref.start])
        out.append(Chip(ref.entity_type, ref.reference, ref.display))
        last = ref.end
    if last < len(text):
        out.append(text[last:])
    return out


def day_bounds(value: str | None, *, end: bool) -> float | None:
    """A `YYYY-MM-DD` form date as a UTC timestamp (start of day, or end with `end`)."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    moment = datetime.combine(day, time.max if end else time.min, tzinfo=UTC)
    return moment.timestamp()


def fmt_time(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
