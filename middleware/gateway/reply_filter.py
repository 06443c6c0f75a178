"""The bot's side of the conversation through the detector: what it wrote, in reference form.

A bot may write personal data itself (a CRM lookup, a value an opt-in action put into a
message).  Every string of a reply (text, buttons' titles and payloads, `custom` payload
strings, attachments' and other protocol fields' strings) is scanned; each value found
is vaulted in the conversation and replaced by its reference, so history, logs, exports
and the viewer only ever hold the reference form.

The references the bot already holds are not values: spans overlapping one are dropped
(a `mask` display such as `4111_1111_1111_####` would otherwise be vaulted a second time).
Confirmation prompts are filtered in their reference form, before the gateway reveals
anything in them for the end user, so a revealed value never reaches this side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from coatcheck.grammar import parse_references
from coatcheck.middleware.detect import Span
from coatcheck.middleware.gateway.turns import BotReply, Button
from coatcheck.middleware.pipeline import Redactor

__all__ = ["FoundValues", "ReplyFilter", "map_reply"]

StrMap = Callable[[str], str]


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON-like value (dict values, list items), depth first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _mapped(value: Any, fn: StrMap) -> Any:
    """`value` rebuilt with `fn` applied to every string in it (keys kept as they are)."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, Mapping):
        return {key: _mapped(item, fn) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_mapped(item, fn) for item in value]
    return value


def reply_strings(reply: BotReply) -> Iterator[str]:
    """Every string the bot wrote into one reply."""
    if reply.text is not None:
        yield reply.text
    for button in reply.buttons:
        yield button.title
        if button.payload is not None:
            yield button.payload
        yield from _strings(button.extras)
    yield from _strings(reply.custom)
    yield from _strings(reply.extras)


def map_reply(reply: BotReply, fn: StrMap) -> BotReply:
    """`reply` with `fn` applied to every string the bot wrote into it."""
    buttons = tuple(
        Button(
            fn(b.title),
            None if b.payload is None else fn(b.payload),
            _mapped(b.extras, fn) if b.extras else b.extras,
        )
        for b in reply.buttons
    )
    return replace(
        reply,
        text=None if reply.text is None else fn(reply.text),
        buttons=buttons,
        custom=_mapped(reply.custom, fn),
        extras=_mapped(reply.extras, fn) if reply.extras else reply.extras,
    )


@dataclass(frozen=True, slots=True)
class FoundValues:
    """What the detector found in an answer's strings, before vaulting: each distinct
    string with its spans (outside references), and the (type, value) items in order."""

    spans: dict[str, list[Span]]

    def items(self) -> list[tuple[str, str]]:
        return [(s.entity_type, s.value) for spans in self.spans.values() for s in spans]

    def values(self) -> Iterator[str]:
        for spans in self.spans.values():
            for span in spans:
                yield span.value


# Reply strings remembered as holding no value: a bot's templates ("Thanks, noted.") come
# back on every turn, and detection is a function of the text alone here.
_CLEAN_MEMORY = 1024
_CLEAN_MAX_CHARS = 512


class ReplyFilter:
    """Finds values in the bot's replies and renders them as references.

    Strings found to hold no value are remembered (bounded, exact text, in this worker's
    memory only: text that held nothing to vault), so a template reply skips the detector
    the next time; the detector's config is fixed for the filter's lifetime.
    """

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._clean: set[str] = set()

    def find(self, replies: tuple[BotReply, ...]) -> FoundValues:
        """The spans of every distinct string of `replies` that holds a value."""
        found: dict[str, list[Span]] = {}
        seen: set[str] = set()
        for reply in replies:
            for text in reply_strings(reply):
                if text in seen:
                    continue
                seen.add(text)
                spans = self._spans(text)
                if spans:
                    found[text] = spans
        return FoundValues(found)

    def _spans(self, text: str) -> list[Span]:
        """Detected spans that touch no reference already in `text`."""
        if text in self._clean:
            return []
        spans = self._redactor.detector.detect(text)
        if spans:
            refs = [(r.start, r.end) for r in parse_references(text)]
            spans = [s for s in spans if all(s.end <= a or s.start >= b for a, b in refs)]
        if not spans and len(text) <= _CLEAN_MAX_CHARS:
            if len(self._clean) >= _CLEAN_MEMORY:
                self._clean = set()
            self._clean.add(text)
        return spans

    def renderer(self, found: FoundValues, refs: list[str]) -> StrMap:
        """A string map that swaps each found value for its reference (`refs` in the order
        of `found.items()`); strings without a value pass unchanged."""
        rendered: dict[str, str] = {}
        at = 0
        for text, spans in found.spans.items():
            rendered[text] = self._redactor.render(text, spans, refs[at : at + len(spans)]).text
            at += len(spans)
        return lambda text: rendered.get(text, text)
