"""Text the gateway accepts from anyone: no lone surrogates, no control characters.

Used by the HTTP bodies (as a pydantic validator, `CleanStr`), the path parameters and the
log viewer's forms alike; the error names the field, never the text.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from coatcheck.middleware.gateway.errors import BadText

__all__ = ["CleanStr", "ConversationId", "clean_field", "clean_text"]

# Lone surrogates, and C0 controls other than tab/newline/carriage return.
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def clean_text(value: str) -> str:
    """Refuse text that storage or the bot cannot take (no value in the message).

    Two regex scans (C speed) instead of a Python loop over every character: a 4,000-char
    message cost about 0.4 ms per field that way.
    """
    if _SURROGATE.search(value):
        raise ValueError("lone surrogate characters are not allowed")
    if _CONTROL.search(value):
        raise ValueError("control characters (such as NUL) are not allowed")
    return value


def clean_field(value: str, name: str) -> str:
    """`clean_text` for a value outside a body model: `BadText(name)` when refused."""
    try:
        return clean_text(value)
    except ValueError:
        raise BadText(name) from None


CleanStr = Annotated[str, AfterValidator(clean_text)]
ConversationId = Annotated[CleanStr, Field(min_length=1, max_length=255)]
