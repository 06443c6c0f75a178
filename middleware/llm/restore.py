"""The response filter of one text field: restore this request's placeholders, redact values
the client never sent, and hold back only what could still change.

`FieldFilter` is fed a field's text as it streams (`feed`) and closed with `finish`; both
return what may be released now, twice: for the client (placeholders become the client's
own values, JSON-escaped inside tool-call arguments) and for history (placeholders become
references). A non-streamed answer is one `feed` plus `finish`, so both paths share every
rule. Per feed it holds back the shortest tail that could still be the start of a
placeholder variant (at most `MAX_VARIANT_LEN` characters) or of a value the response
detector can match (at most its `max_hold`); anything before that is final and released at
once. Work per feed is bounded by the held tail plus the new text, so a stream costs
O(n * bound), linear in its length (docs/llm.md, "Hold-back").
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from coatcheck.middleware.llm.placeholders import (
    MAX_VARIANT_LEN,
    PlaceholderGrammar,
    PlaceholderMatch,
    label_for,
)
from coatcheck.middleware.llm.redact import RestoreMap
from coatcheck.middleware.llm.response_detect import Found, ResponseDetector

__all__ = ["CONTEXT", "FieldFilter", "Released", "redaction_marker"]

CONTEXT = 64  # released characters the detector still sees on the left (context words)
_GUARD = 4096  # hard cap on a held tail, whatever the detector says


@dataclass(frozen=True, slots=True)
class Released:
    """Text that may go out now: to the client, and to history."""

    client: str = ""
    record: str = ""


_NOTHING = Released()


def redaction_marker(entity_type: str) -> str:
    """What a value the client never sent becomes: `[REDACTED_EMAIL]` (not a placeholder)."""
    return f"[REDACTED_{label_for(entity_type)}]"


class FieldFilter:
    """One text field of one choice (content, refusal, a tool call's arguments...)."""

    def __init__(
        self,
        grammar: PlaceholderGrammar,
        restore: RestoreMap,
        detector: ResponseDetector,
        *,
        json_string: bool = False,
    ) -> None:
        self._grammar = grammar
        self._restore = restore
        self._detector = detector
        self._json = json_string
        self._buf = ""
        self._ctx = ""
        self.max_hold = min(_GUARD, max(MAX_VARIANT_LEN, detector.max_hold))

    @property
    def held(self) -> int:
        """How many characters are held back right now."""
        return len(self._buf)

    def feed(self, text: str) -> Released:
        if not text:
            return _NOTHING
        self._buf += text
        buf = self._buf
        hold = min(self._grammar.hold_from(buf, self._ctx), self._detector.hold_from(buf))
        hold = max(hold, len(buf) - self.max_hold)
        return self._release(hold, final=False) if hold > 0 else _NOTHING

    def finish(self) -> Released:
        """The stream of this field ended: release everything (nothing can grow any more)."""
        return self._release(len(self._buf), final=True) if self._buf else _NOTHING

    def _release(self, cut: int, *, final: bool) -> Released:
        buf = self._buf
        places = [m for m in self._grammar.scan(buf, self._ctx) if self._restore.get(m.key)]
        for m in places:
            if m.start < cut < m.end:
                cut = m.start
        values = self._values(buf, places)
        for f in reversed(values):
            if f.start < cut < f.end:
                cut = f.start
        if not final:
            cut = max(cut, len(buf) - self.max_hold)  # the guard wins over a straddle
        if cut <= 0:
            return _NOTHING
        out = self._render(buf, cut, places, values)
        self._ctx = (self._ctx + buf[:cut])[-CONTEXT:]
        self._buf = buf[cut:]
        return out

    def _values(self, buf: str, places: list[PlaceholderMatch]) -> list[Found]:
        """Detected values in `buf` (with left context), outside restored placeholders."""
        shift = len(self._ctx)
        raw = self._detector.find(self._ctx + buf) if buf else ()
        gaps: list[Found] = []
        for f in raw:
            if f.end - shift <= 0:
                continue
            parts = [(max(0, f.start - shift), f.end - shift)]
            for m in places:  # a find never covers a restored placeholder: cut it out
                parts = [
                    piece
                    for a, b in parts
                    for piece in ((a, min(b, m.start)), (max(a, m.end), b))
                    if piece[0] < piece[1]
                ]
            gaps += [Found(a, b, f.entity_type) for a, b in parts]
        return sorted(gaps, key=lambda f: f.start)

    def _render(
        self, buf: str, cut: int, places: list[PlaceholderMatch], values: list[Found]
    ) -> Released:
        client: list[str] = []
        record: list[str] = []
        pos = 0
        pieces = sorted(
            [(m.start, m.end, m) for m in places if m.end <= cut]
            + [(f.start, min(f.end, cut), f) for f in values if f.start < cut],
            key=lambda p: p[0],
        )
        for start, end, piece in pieces:
            if start < pos:
                continue
            plain = buf[pos:start]
            client.append(plain)
            record.append(plain)
            if isinstance(piece, PlaceholderMatch):
                entry = self._restore.get(piece.key)
                assert entry is not None
                client.append(self._escape(entry.value))
                record.append(entry.record)
            else:
                self._render_value(buf[start:end], piece.entity_type, client, record)
            pos = end
        client.append(buf[pos:cut])
        record.append(buf[pos:cut])
        return Released("".join(client), "".join(record))

    def _render_value(
        self, text: str, entity_type: str, client: list[str], record: list[str]
    ) -> None:
        key = self._restore.key_of(text)
        entry = self._restore.get(key) if key is not None else None
        if entry is not None:  # the client's own value, written out by the model: theirs
            client.append(text)
            record.append(entry.record)
            return
        marker = redaction_marker(entity_type)
        client.append(marker)
        record.append(marker)

    def _escape(self, value: str) -> str:
        return json.dumps(value, ensure_ascii=False)[1:-1] if self._json else value
