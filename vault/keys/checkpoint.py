"""Signed audit checkpoints: (sequence number, chain head, time) under Ed25519.

The operator keeps checkpoints *outside* the database; `coatcheck audit verify --checkpoint
FILE` then proves that the chain still holds row `seq` with MAC `head` (no edit, deletion,
renumbering or truncation behind it).  A checkpoint is one JSON object on one line::

    {"v": 1, "seq": 1200, "head": "<64 hex>", "at": 1700000000.0, "key": "<key id>", "sig": "<b64>"}

The signature covers the canonical encoding of `v, seq, head, at` with a domain prefix.
Verification takes the public key the operator pinned (`key` only names it: a file cannot
vouch for itself).  Why the signing key is a sealed seed and not a token object:
docs/keys.md, "Checkpoints".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from coatcheck.vault import _crypto
from coatcheck.vault.keys.errors import InvalidCheckpoint

__all__ = ["Checkpoint", "CheckpointSigner", "key_id", "verify_checkpoint"]

_DOMAIN = b"coatcheck/audit-checkpoint/v1\n"
_FIELDS = {"v", "seq", "head", "at", "key", "sig"}


@dataclass(frozen=True)
class Checkpoint:
    """The chain as it was: `seq` rows, the last one's MAC `head`, signed at `at` (epoch s)."""

    seq: int
    head: str
    at: float


def key_id(public: bytes) -> str:
    """A short, stable name for a public key (what a checkpoint says it was signed with)."""
    return hashlib.sha256(public).hexdigest()[:16]


def _message(cp: Checkpoint) -> bytes:
    canonical = json.dumps([1, cp.seq, cp.head, repr(cp.at)], separators=(",", ":"))
    return _DOMAIN + canonical.encode("ascii")


class CheckpointSigner:
    """Signs checkpoints with an Ed25519 seed (from `ServiceKeys`); repr shows the key id."""

    __slots__ = ("_public", "_seed")

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._public = _crypto.ed25519_public(seed)

    def __repr__(self) -> str:
        return f"CheckpointSigner(key={key_id(self._public)!r})"

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte public key the operator pins to verify checkpoints."""
        return self._public

    def sign(self, cp: Checkpoint) -> str:
        """The checkpoint as one line of JSON."""
        signature = _crypto.ed25519_sign(self._seed, _message(cp))
        doc = {
            "v": 1,
            "seq": cp.seq,
            "head": cp.head,
            "at": cp.at,
            "key": key_id(self._public),
            "sig": base64.b64encode(signature).decode("ascii"),
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def _parse(text: str) -> tuple[Checkpoint, bytes]:
    doc: Any = json.loads(text)
    if not isinstance(doc, dict) or set(doc) != _FIELDS or doc["v"] != 1:
        raise InvalidCheckpoint()
    seq, head, at, sig = doc["seq"], doc["head"], doc["at"], doc["sig"]
    if (
        type(seq) is not int
        or seq < 0
        or not isinstance(head, str)
        or not isinstance(at, float | int)
        or not isinstance(sig, str)
    ):
        raise InvalidCheckpoint()
    return Checkpoint(seq, head, float(at)), base64.b64decode(sig, validate=True)


def verify_checkpoint(text: str, public: bytes) -> Checkpoint:
    """The checkpoint in `text` if `public` signed it; else `InvalidCheckpoint` (opaque)."""
    try:
        cp, signature = _parse(text)
    except (ValueError, binascii.Error):
        raise InvalidCheckpoint() from None
    if not _crypto.ed25519_verify(public, _message(cp), signature):
        raise InvalidCheckpoint()
    return cp
