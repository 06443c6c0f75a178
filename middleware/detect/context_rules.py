"""Context rules: what the bot is waiting for decides how the next message is read.

Built-in defaults per type (pattern or whole capture); YAML `types.<T>.pattern/capture`
and custom types override them. PERSON and ADDRESS/LOCATION need no model: the rule takes
the answer, minus a leading "my name is" / "I live at". A `pattern` capture of a type that
has no pattern of its own but a global recognizer (EMAIL_ADDRESS, CREDIT_CARD, US_SSN...)
uses that recognizer, with the expectation standing in for its context words.
"""

from __future__ import annotations

from dataclasses import dataclass

from coatcheck.grammar import TYPE_NAME_RE as _TYPE_NAME
from coatcheck.middleware.detect.config import DetectConfig
from coatcheck.middleware.detect.errors import UnknownTypeError
from coatcheck.middleware.detect.recognizers import BUILTIN_RECOGNIZERS, Candidate, Recognizer
from coatcheck.middleware.detect.spans import Capture, Context
from coatcheck.saferegex import safe_compile

__all__ = ["DEFAULT_RULES", "Rule", "apply_rule", "resolve_rule"]

_NAME_LEAD = r"(?:(?:my name is|my name's|name is|i am|i'm|it's|it is|this is|call me)\s+)?"
_ADDR_LEAD = r"(?:(?:i live (?:at|in)|my address is|address is|it's|it is|send it to)\s+)?"
_TAIL = r"[\s.!?]*$"


@dataclass(frozen=True, slots=True)
class Rule:
    """How one expected type is captured: a regex (group `value` if present), the type's
    global recognizer (no regex), or the whole message."""

    capture: Capture
    pattern: str | None = None
    recognizer: Recognizer | None = None


DEFAULT_RULES: dict[str, Rule] = {
    "PASSWORD": Rule("whole"),
    "PIN": Rule("pattern", r"(?<!\d)\d{4,8}(?!\d)"),
    "OTP": Rule("pattern", r"(?<![\w])[0-9A-Za-z]{4,8}(?![\w])(?<=\d)|(?<!\d)\d{4,8}(?!\d)"),
    "PHONE_NUMBER": Rule("pattern", r"(?<![\w+])\+?\(?\d[\d ().-]{5,18}\d(?!\d)"),
    "SSN_LAST4": Rule("pattern", r"(?<!\d)\d{4}(?!\d)"),
    "PERSON": Rule("pattern", rf"(?i)^\s*{_NAME_LEAD}(?P<value>.+?){_TAIL}"),
    "ADDRESS": Rule("pattern", rf"(?i)^\s*{_ADDR_LEAD}(?P<value>.+?){_TAIL}"),
    "LOCATION": Rule("pattern", rf"(?i)^\s*{_ADDR_LEAD}(?P<value>.+?){_TAIL}"),
}
# Types whose global recognizer stands in when a `pattern` capture has no regex.
# (The first recognizer of a type: the plain e-mail pattern, not the spelled-out one.)
_GLOBAL: dict[str, Recognizer] = {}
for _recognizer in BUILTIN_RECOGNIZERS:
    _GLOBAL.setdefault(_recognizer.entity_type, _recognizer)


def resolve_rule(config: DetectConfig, context: Context) -> Rule:
    """The effective rule for a context: caller capture > YAML > custom type > default."""
    name = context.expect
    if not _TYPE_NAME.fullmatch(name):
        raise UnknownTypeError("expect", "not a valid type name")
    custom = next((c for c in config.custom_types if c.name == name), None)
    settings = config.types.get(name)
    default = DEFAULT_RULES.get(name)
    pattern = (settings.pattern if settings else None) or (custom.regex if custom else None)
    if pattern is None and default is not None:
        pattern = default.pattern
    capture = context.capture or (settings.capture if settings else None)
    if capture is None:
        capture = default.capture if default is not None else "pattern"
    if capture == "pattern" and pattern is None:
        recognizer = _GLOBAL.get(name)
        if recognizer is None:
            raise UnknownTypeError(name)
        return Rule(capture, None, recognizer)
    return Rule(capture, pattern)


def apply_rule(text: str, entity_type: str, rule: Rule) -> list[Candidate]:
    """Candidates for the expected type in normalised text (empty if nothing fits)."""
    if rule.capture == "whole":
        stripped = text.strip()
        if not stripped:
            return []
        start = text.index(stripped)
        return [Candidate(start, start + len(stripped), entity_type, "context", True, 1.0)]
    if rule.recognizer is not None:
        return [
            Candidate(c.start, c.end, entity_type, "context", True, 1.0)
            for c in rule.recognizer.find(text, expected=True)
        ]
    assert rule.pattern is not None
    regex = safe_compile(rule.pattern)  # config or built-in: RE2, or `regex` time-limited
    found: list[Candidate] = []
    for match in regex.finditer(text):
        start, end = match.span("value") if "value" in regex.groupindex else match.span()
        if end > start:
            found.append(Candidate(start, end, entity_type, "context", True, 1.0))
    return found
