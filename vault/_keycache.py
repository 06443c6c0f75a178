"""Unwrapped data keys and live-epoch hints, per worker, bounded.

Why: unwrapping a data key (AES-GCM under the KEK) and deriving its two HKDF sub-keys
costs more than the rest of a one-value tokenize; a worker keeps them in an LRU of
`size` epochs.  Entries are keyed by the epoch's row id *and* its wrapped key as read in
the caller's transaction, so a rolled-back (and on SQLite possibly reused) row id never
matches keys of another transaction, and a shred (wrapped key nulled) or re-wrap shows
as a miss.  Nothing here is trusted: every reveal reads the epoch row in the same query
as the value, and the live-epoch hint is re-checked in SQL by the tokenize fast path.

`EpochKeys` holds one epoch's sub-keys and the layout of what they bind: a value's AAD
(tenant, conversation, epoch, reference, type) and the blind index (HMAC of type +
value, so equal values share a reference within the epoch and are unlinkable across).

It also remembers the references of values already stored in its epoch that can only go
away with the epoch (no expiry), so a value sent again (a channel's sender id, vaulted
with every message) costs one HMAC instead of a sealed row, a refused INSERT and a
SELECT.  Only committed rows are remembered, and only for an epoch whose liveness the
tokenize transaction checks in SQL: a shred or end of the epoch (here or in another
worker) fails that check, and a re-wrap changes the wrapped key these keys are filed
under.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from sqlalchemy.engine import Connection

from coatcheck.vault import _crypto
from coatcheck.vault._keks import Keks

__all__ = ["EpochKeys", "Hint", "IndexKey", "KeyCache", "value_aad"]

# A conversation's live epoch as last committed here: (row id, epoch, wrapped DEK).
Hint = tuple[int, int, bytes]
IndexKey = tuple[str, bytes]  # (entity type, blind index)

# References remembered per epoch (EpochKeys.recall): the sender id and a conversation's
# few repeated values; past it the memory starts again (a miss only costs the SQL path).
# Bounded so a full key cache (4,096 epochs by default) holds at most ~130k small entries.
KNOWN_PER_EPOCH = 32


def value_aad(tenant: str, conversation_id: str, epoch: int, ref: str, entity_type: str) -> bytes:
    """What a value's ciphertext is bound to: moved to another row, it no longer opens."""
    return _crypto.aad("value", tenant, conversation_id, epoch, ref, entity_type)


class EpochKeys:
    """One epoch's sub-keys (value sealing, blind index); repr never shows them."""

    __slots__ = ("_index", "_known", "sealer")

    def __init__(self, dek: bytes) -> None:
        self.sealer = _crypto.Sealer(_crypto.derive(dek, b"coatcheck/value-seal/v1"))
        self._index = _crypto.derive(dek, b"coatcheck/blind-index/v1")
        self._known: dict[IndexKey, str] = {}

    def __repr__(self) -> str:
        return "EpochKeys(<redacted>)"

    def blind_index(self, entity_type: str, value: str) -> bytes:
        return _crypto.hmac_sha256(self._index, _crypto.aad(entity_type, value))

    def recall(self, index_keys: Iterable[IndexKey]) -> dict[IndexKey, str]:
        """The remembered references among `index_keys` (a hint: the caller's transaction
        must still check that the epoch is live)."""
        known = self._known
        return {key: known[key] for key in index_keys if key in known}

    def learn(self, refs: dict[IndexKey, str]) -> None:
        """After the commit that stored (or found) them: references of values that never
        expire on their own.  Dict operations only, so worker threads need no lock."""
        if len(self._known) + len(refs) > KNOWN_PER_EPOCH:
            self._known = {}
        self._known.update(refs)


class KeyCache:
    """An LRU of epoch keys in front of the KEKs, and each conversation's live-epoch hint."""

    def __init__(self, keks: Keks, size: int) -> None:
        self._keks = keks
        self._size = size
        self._keys: OrderedDict[tuple[int, bytes], EpochKeys] = OrderedDict()
        self._hints: OrderedDict[str, Hint] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, conn: Connection, epoch: Any, conversation_id: str) -> EpochKeys:
        """The keys of `epoch` (a row with id, epoch, kek_id, kek_version, wrapped_dek);
        `KeyDestroyed` when its KEK was destroyed (a restored copy)."""
        key = (epoch.id, epoch.wrapped_dek)
        with self._lock:
            keys = self._keys.get(key)
            if keys is not None:
                self._keys.move_to_end(key)
                return keys
        dek = self._keks.unwrap(conn, epoch, conversation_id)
        keys = EpochKeys(dek)
        with self._lock:
            self._keys[key] = keys
            self._keys.move_to_end(key)
            while len(self._keys) > self._size:
                self._keys.popitem(last=False)
        return keys

    def hint(self, conversation_id: str) -> tuple[Hint, EpochKeys] | None:
        """The conversation's remembered live epoch and its keys, if both are still here."""
        with self._lock:
            hint = self._hints.get(conversation_id)
            if hint is None:
                return None
            keys = self._keys.get((hint[0], hint[2]))
            if keys is None:
                del self._hints[conversation_id]
                return None
            self._hints.move_to_end(conversation_id)
            self._keys.move_to_end((hint[0], hint[2]))
            return hint, keys

    def remember(self, conversation_id: str, epoch: Any) -> None:
        """After the transaction that read or created `epoch` committed: the next tokenize
        of the conversation may take the fast path."""
        with self._lock:
            self._hints[conversation_id] = (epoch.id, epoch.epoch, epoch.wrapped_dek)
            self._hints.move_to_end(conversation_id)
            while len(self._hints) > self._size:
                self._hints.popitem(last=False)

    def forget(self, conversation_id: str) -> None:
        with self._lock:
            self._hints.pop(conversation_id, None)

    def evict(self, conversation_id: str | None, epoch_ids: Iterable[int]) -> None:
        """Drop the keys of shredded epochs (and the conversation's live-epoch hint)."""
        gone = set(epoch_ids)
        with self._lock:
            if gone:
                for key in [k for k in self._keys if k[0] in gone]:
                    del self._keys[key]
            if conversation_id is not None:
                self._hints.pop(conversation_id, None)
