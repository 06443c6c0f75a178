"""What the LLM core's tests inject: an in-memory placeholder book and vault (used by these
pure tests only; the database versions come with the vault split), and builders."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from typing import Any

from coatcheck.middleware.detect import Detector, load_config
from coatcheck.middleware.llm import (
    WORD_TYPES,
    PromptRedactor,
    ShapedDetector,
    default_grammar,
)

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


class MemoryBook:
    """`PlaceholderBook` in memory: one lock stands in for the database constraints."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_ref: dict[tuple[str, str], tuple[str, int]] = {}
        self._by_key: dict[tuple[str, str, int], str] = {}
        self._next: dict[tuple[str, str], int] = {}

    def number_many(
        self, conversation_id: str, items: Sequence[tuple[str, str]], conn: Any = None
    ) -> list[int]:
        out: list[int] = []
        with self._lock:
            for label, ref in items:
                known = self._by_ref.get((conversation_id, ref))
                if known is None:
                    n = self._next.get((conversation_id, label), 0) + 1
                    self._next[(conversation_id, label)] = n
                    known = (label, n)
                    self._by_ref[(conversation_id, ref)] = known
                    self._by_key[(conversation_id, label, n)] = ref
                out.append(known[1])
        return out

    def lookup_many(
        self, conversation_id: str, keys: Sequence[tuple[str, int]], conn: Any = None
    ) -> list[str | None]:
        with self._lock:
            return [self._by_key.get((conversation_id, label, n)) for label, n in keys]


class MemoryVault:
    """`tokenize_many` in memory: the same value in a conversation gets the same reference."""

    def __init__(self) -> None:
        self.refs: dict[tuple[str, str, str], str] = {}
        self.calls = 0
        self.down = False

    def tokenize_many(
        self,
        conversation_id: str,
        items: Sequence[tuple[str, str]],
        *,
        then: Callable[[Any, list[str]], None] | None = None,
    ) -> list[str]:
        if self.down:
            raise ConnectionError("vault down")
        self.calls += 1
        refs = [
            self.refs.setdefault(
                (conversation_id, t, v), "".join(secrets.choice(_CROCKFORD) for _ in range(10))
            )
            for t, v in items
        ]
        if then is not None:
            then(None, refs)
        return refs


DETECTOR = Detector(load_config(None))


def redactor(vault: MemoryVault | None = None, book: MemoryBook | None = None) -> PromptRedactor:
    """The real detector, an in-memory vault and book."""
    return PromptRedactor(DETECTOR, vault or MemoryVault(), book or MemoryBook())


def response_detector() -> ShapedDetector:
    """The real detector as the response detector, for the pattern types it has."""
    return ShapedDetector(DETECTOR.detect, WORD_TYPES)


GRAMMAR = default_grammar()
