"""Rendering, pure: display modes and the reference token grammar."""

from coatcheck.middleware.render.display import display_for, mask, redaction_display, render
from coatcheck.middleware.render.grammar import (
    DISPLAY_RE,
    REFERENCE_RE,
    ParsedReference,
    format_reference,
    parse_references,
    replace_references,
)

__all__ = [
    "DISPLAY_RE",
    "REFERENCE_RE",
    "ParsedReference",
    "display_for",
    "format_reference",
    "mask",
    "parse_references",
    "redaction_display",
    "render",
    "replace_references",
]
