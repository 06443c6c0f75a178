"""Re-tokenization of what an action sends back: events and responses.

Runs at the end of an opted-in `run`: values the action saw are put back as their
references locally (exact match, no detector guesswork), then the remaining text goes
through `/v1/redact` with the run's grant, so new PII of the granted types the action
produced is vaulted too (same value, same reference); any other type comes back as
`[TYPE]` and is stored nowhere (docs/actions.md). Existing references
are never sent through the detector (the gateway defangs look-alike tokens).

Everything is walked: every key and value of every dict at any depth (no key is trusted
to name "domain things": a response name, an image URL, a `name=` template variable all
reach Rasa's tracker), lists, tuples, sets. Numbers equal to a revealed value become its
reference; anything that is not JSON-like is refused, since it cannot be checked.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from coatcheck.actions._references import find_references
from coatcheck.actions.client import CoatcheckClient, GrantToken
from coatcheck.actions.errors import UnsupportedValue

__all__ = ["Retokenizer"]


class Retokenizer:
    """Replaces revealed values by their references, then redacts what is left.

    One instance per action run: each distinct piece of text is sent to the service once
    (the same keys and event names recur in every message and event).
    """

    def __init__(
        self,
        client: CoatcheckClient,
        conversation_id: str,
        revealed: Mapping[str, str],
        grant: GrantToken | None = None,
    ) -> None:
        self._client = client
        self._conversation_id = conversation_id
        self._grant = grant
        self._known = {value: ref for value, ref in revealed.items() if value}
        # One alternation, longest value first, applied in a single pass: a replacement
        # is never rescanned, so a short value cannot match inside an inserted reference.
        ordered = sorted(self._known, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._redacted: dict[str, asyncio.Future[str]] = {}

    async def walk(self, data: Any) -> Any:
        """A copy of `data` with every string re-tokenized (calls run concurrently).

        Containers keep their kind (dict, list, tuple, set, frozenset); dict keys are
        re-tokenized like values. Raises `UnsupportedValue` for anything else that is
        not a str, number, bool or None.
        """
        if isinstance(data, str):
            return await self.text(data)
        if data is None or isinstance(data, bool):
            return data
        if isinstance(data, int | float):
            return self._known.get(str(data), data)
        if isinstance(data, Mapping):
            keys = await asyncio.gather(*(self.walk(key) for key in data))
            values = await asyncio.gather(*(self.walk(value) for value in data.values()))
            return dict(zip(keys, values, strict=True))
        if isinstance(data, list | tuple | set | frozenset):
            items = await asyncio.gather(*(self.walk(item) for item in data))
            return items if isinstance(data, list) else type(data)(items)
        raise UnsupportedValue(type(data).__name__)

    async def text(self, text: str) -> str:
        """One string: existing references kept, known values swapped, the rest redacted."""
        pieces = _split(text)
        done = await asyncio.gather(*(self._gap(gap) for gap in pieces[0::2]))
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
        pending = self._redacted.get(part)
        if pending is None:
            pending = asyncio.ensure_future(
                self._client.redact(self._conversation_id, part, grant=self._grant)
            )
            self._redacted[part] = pending
        return await pending


def _split(text: str) -> list[str]:
    """[gap, reference, gap, ..., gap]: references (with display form) at odd indexes."""
    pieces: list[str] = []
    cursor = 0
    for ref in find_references(text):
        pieces += [text[cursor : ref.start], text[ref.start : ref.end]]
        cursor = ref.end
    pieces.append(text[cursor:])
    return pieces
