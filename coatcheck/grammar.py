"""The one grammar of names shared by every part: entity type names and reference tokens.

Config, detection, rendering, the HTTP API and the vault all check type names here, so a
name either passes everywhere or nowhere (a 70-character type used to pass the config and
then fail every message in the vault).  It imports nothing from the parts: the vault may use
it without knowing the middleware.  docs/tokens.md describes the grammar::

    reference := "CC_" TYPE "_" ID
    TYPE      := [A-Z][A-Z0-9_]{0,63}     (at most TYPE_NAME_MAX characters)
    ID        := [0-9a-hjkmnp-tv-z]{10}   (Crockford base32, lower case)
    rendering := reference [ "(" DISPLAY ")" ]
    DISPLAY   := [!-'*-~]*                 (printable ASCII without space, "(" and ")")
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "DISPLAY_RE",
    "REFERENCE_RE",
    "REF_ID_RE",
    "TYPE_NAME_MAX",
    "TYPE_NAME_RE",
    "TYPE_NAME_RULE",
    "ParsedReference",
    "format_reference",
    "is_type_name",
    "parse_references",
    "replace_references",
]

TYPE_NAME_MAX = 64  # the vault's entity_type column (String(64)) and every check above it
_TYPE = rf"[A-Z][A-Z0-9_]{{0,{TYPE_NAME_MAX - 1}}}"
_REF_ID = r"[0-9a-hjkmnp-tv-z]{10}"
_DISPLAY = r"[!-'*-~]*"

TYPE_NAME_RE = re.compile(_TYPE)
TYPE_NAME_RULE = (
    f"must be an entity type name: an upper-case letter, then upper-case letters, digits "
    f"or '_', at most {TYPE_NAME_MAX} characters"
)
REF_ID_RE = re.compile(_REF_ID)
DISPLAY_RE = re.compile(_DISPLAY)
REFERENCE_RE = re.compile(rf"CC_({_TYPE})_({_REF_ID})(?:\(({_DISPLAY})\))?")


def is_type_name(value: object) -> bool:
    """Whether `value` is a valid entity type name (the one rule, length included)."""
    return isinstance(value, str) and TYPE_NAME_RE.fullmatch(value) is not None


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
    if not is_type_name(entity_type):
        raise ValueError("entity_type outside the grammar")
    if not REF_ID_RE.fullmatch(ref_id):
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
