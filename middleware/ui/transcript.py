"""Split redacted history text into plain runs and reference chips (pure; no values).

History holds only reference form (`CC_<TYPE>_<id>(<display>)`), so the chips are built
by parsing the text with the one token grammar: type, reference and display form.  The
rule that fired comes from the entities each user line recorded (reference -> rule); a
reference the bot repeats in its reply shows the rule of the user line that created it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from coatcheck.middleware.render import parse_references

__all__ = ["Chip", "Segment", "day_bounds", "fmt_time", "rules_by_reference", "segments"]


@dataclass(frozen=True)
class Chip:
    entity_type: str
    reference: str
    display: str | None
    rule: str | None = None  # None: not recorded (lines written before migration 0005)


Segment = str | Chip


def rules_by_reference(lines: list[dict[str, Any]]) -> dict[str, str]:
    """reference -> the rule that fired, from the history lines' recorded entities."""
    return {e["ref"]: e["rule"] for line in lines for e in line.get("entities") or []}


def segments(text: str, rules: dict[str, str] | None = None) -> list[Segment]:
    """`text` as alternating plain strings and chips, in order."""
    rules = rules or {}
    out: list[Segment] = []
    last = 0
    for ref in parse_references(text):
        if ref.start > last:
            out.append(text[last : ref.start])
        out.append(Chip(ref.entity_type, ref.reference, ref.display, rules.get(ref.reference)))
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
