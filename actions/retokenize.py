"""Re-tokenization of what an action sends back: events and responses.

Runs at the end of an opted-in `run`: values the action saw are put back as their
references locally (exact match, no detector guesswork), then the remaining text goes
through `/v1/redact` so new PII the action produced is vaulted too. Existing references
are never sent through the detector (the gateway defangs look-alike tokens).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from coatcheck.actions._references import find_references
from coatcheck.actions.client import CoatcheckClient

__all__ = ["Retokenizer"]

# Message keys that name domain things (response names, URLs of images), not user data.
_SKIP_KEYS = frozenset({"template", "response", "image", "event", "name", "timestamp"})


class Retokenizer:
    """Replaces revealed values by their references, then redacts what is left."""

    def __init__(
        self, client: CoatcheckClient, conversation_id: str, revealed: Mapping[str, str]
    ) -> None:
        self._client = client
        self._conversation_id = conversation_id
        self._known = {value: ref for value, ref in revealed.items() if value}
        # One alternation, longest value first, applied in a single pass: a replacement
        # is never rescanned, so a short value cannot match inside an inserted reference.
        ordered = sorted(self._known, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    async def walk(self, data: Any) -> Any:
        """A copy of `data` (JSON-like) with every string re-tokenized (calls run concurrently)."""
        if isinstance(data, str):
            return await self.text(data)
        if isinstance(data, list):
            return list(await asyncio.gather(*(self.walk(item) for item in data)))
        if isinstance(data, dict):
            keys = [key for key in data if key not in _SKIP_KEYS]
            done = await asyncio.gather(*(self.walk(data[key]) for key in keys))
            return {**data, **dict(zip(keys, done, strict=True))}
        return data

    async def text(self, text: str) -> str:
        """One string: existing references kept, known values swapped, the rest redacted."""
        pieces = _split(text)
        gaps = pieces[0::2]
        done = await asyncio.gather(*(self._gap(gap) for gap in gaps))
        pieces[0::2] = done
        return "".join(pieces)

    async def _gap(self, gap: str) -> str:
        """Text between references: known values first, then the service for new PII."""
        if self._pattern is not None:
            gap = self._pattern.sub(lambda m: self._known[m.group(0)], gap)
        pieces = _split(gap)
        redacted = await asyncio.gather(*(self._redact(part) for part in pieces[0::2]))
        pieces[0::2] = redacted
        return "".join(pieces)

    async def _redact(self, part: str) -> str:
        # No letter or digit, no PII (". ", "; "): spare the service a round trip.
        if not any(char.isalnum() for char in part):
            return part
        return await self._client.redact(self._conversation_id, part)


def _split(text: str) -> list[str]:
    """[gap, reference, gap, ..., gap]: references (with display form) at odd indexes."""
    pieces: list[str] = []
    cursor = 0
    for ref in find_references(text):
        pieces += [text[cursor : ref.start], text[ref.start : ref.end]]
        cursor = ref.end
    pieces.append(text[cursor:])
    return pieces
