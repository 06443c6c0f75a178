"""The placeholder book: which number a reference has in its conversation.

The contract (the database implementation comes with the vault split; docs/llm.md,
"The placeholder table", has the proposed table and statements):

- `number_many(conversation_id, [(label, ref_id), ...], conn)` returns one N per item: the
  N this reference already has in the conversation, or the next free N for
  (conversation, label). The same reference always gets the same N in a conversation; two
  references never share (conversation, label, N). Both hold under concurrent requests
  on any number of workers because the DATABASE enforces them (unique constraints), not
  process memory. N may have gaps (a number lost to a concurrent insert is not reused).
- It runs inside the vault's tokenize transaction (`conn`), so the numbers commit with the
  values or not at all.
- `lookup_many(conversation_id, [(label, n), ...], conn)` answers placeholder -> ref_id (or
  None), for history and the log viewer; the response path never needs it (it restores
  from the request's own `RestoreMap`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["PlaceholderBook"]


class PlaceholderBook(Protocol):
    """Numbering of references as placeholders, per conversation and label."""

    def number_many(
        self, conversation_id: str, items: Sequence[tuple[str, str]], conn: Any = None
    ) -> list[int]: ...

    def lookup_many(
        self, conversation_id: str, keys: Sequence[tuple[str, int]], conn: Any = None
    ) -> list[str | None]: ...
