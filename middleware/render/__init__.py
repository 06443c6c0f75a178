"""Rendering, pure: display modes, and the reference token grammar (`coatcheck.grammar`)."""

from coatcheck.grammar import (
    DISPLAY_RE,
    REFERENCE_RE,
    ParsedReference,
    format_reference,
    parse_references,
    replace_references,
)
from coatcheck.middleware.render.display import display_for, mask, redaction_display, render

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
