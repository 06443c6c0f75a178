"""Display modes: what the bot and log viewers see after the reference.

`redaction` derives a random-looking string from the reference id (same ref, same
rendering, nothing of the value); `replacement` is a static configured string; `mask`
hides the first/last N characters and keeps the rest, or with `keep` shows the first/last N
and hides the rest, forced into the DISPLAY charset.
"""

from __future__ import annotations

import base64
import hashlib

from coatcheck.grammar import format_reference
from coatcheck.middleware.detect.config import MaskSettings, TypeSettings

__all__ = ["display_for", "mask", "redaction_display", "render"]

_REDACTION_LENGTH = 8
_FILLER = "_"


def redaction_display(ref_id: str) -> str:
    """8 lower-case alphanumerics derived from the reference id."""
    digest = hashlib.blake2b(ref_id.encode("ascii"), digest_size=10, person=b"cc-display").digest()
    return base64.b32encode(digest).decode("ascii").lower()[:_REDACTION_LENGTH]


def _fits(char: str) -> bool:
    return "!" <= char <= "~" and char not in "()"


def mask(value: str, settings: MaskSettings) -> str:
    """First `first` and last `last` characters replaced by the symbol; the rest kept.

    With `keep`, the other way round: only its first/last characters show.  A value no
    longer than what `keep` would show is hidden whole (a 4-character value under
    `keep: {last: 4}` would otherwise show entirely).
    """
    chars = [c if _fits(c) else _FILLER for c in value]
    if settings.keep is not None:
        return _keep(chars, settings.keep.first, settings.keep.last, settings.symbol)
    length = len(chars)
    head = min(settings.first, length)
    tail = min(settings.last, length - head)
    for index in list(range(head)) + list(range(length - tail, length)):
        chars[index] = settings.symbol
    return "".join(chars)


def _keep(chars: list[str], first: int, last: int, symbol: str) -> str:
    length = len(chars)
    if first + last >= length:
        return symbol * length
    return (
        "".join(chars[:first]) + symbol * (length - first - last) + "".join(chars[length - last :])
    )


def display_for(value: str, ref_id: str, settings: TypeSettings) -> str:
    """The display string of one value under its type's settings."""
    if settings.display == "replacement" and settings.replacement:
        return settings.replacement
    if settings.display == "mask":
        return mask(value, settings.mask)
    return redaction_display(ref_id)


def render(entity_type: str, value: str, ref_id: str, settings: TypeSettings) -> str:
    """The full rendering `CC_<TYPE>_<ref>(<display>)`."""
    return format_reference(entity_type, ref_id, display_for(value, ref_id, settings))
