"""The dangerous layer: the only module that touches cryptographic primitives.

Everything here is a thin, typed wrapper over `cryptography` so the rest of the vault
speaks in terms of "seal", "open", "derive" and "blind index", and a reviewer has one
file to read.  Ciphertexts are `nonce (12 bytes) || AES-256-GCM(ciphertext + tag)`;
every decryption failure becomes one opaque `DecryptionError`.
"""

from __future__ import annotations

import hmac as _compare
import os

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from coatcheck.vault.errors import DecryptionError

__all__ = [
    "KEY_BYTES",
    "NONCE_BYTES",
    "Mac",
    "Sealer",
    "aad",
    "derive",
    "ed25519_public",
    "ed25519_sign",
    "ed25519_verify",
    "equal",
    "hmac_sha256",
    "hmac_verify",
    "new_key",
]

KEY_BYTES = 32
NONCE_BYTES = 12


def new_key() -> bytes:
    """A fresh random 256-bit key from the OS CSPRNG."""
    return os.urandom(KEY_BYTES)


def derive(key: bytes, info: bytes, length: int = KEY_BYTES) -> bytes:
    """HKDF-SHA256 sub-key; `info` separates purposes so one key never serves two."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(key)


def aad(*parts: str | int) -> bytes:
    """Length-prefixed encoding of the context, so ("ab","c") and ("a","bc") differ."""
    out = bytearray()
    for part in parts:
        raw = str(part).encode("utf-8")
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)


class Sealer:
    """AES-256-GCM with a random 96-bit nonce per message, bound to associated data."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "Sealer(<redacted>)"

    def seal(self, plaintext: bytes, associated: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, associated)

    def open(self, blob: bytes, associated: bytes) -> bytes:
        if len(blob) < NONCE_BYTES + 16:
            raise DecryptionError()
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated)
        except InvalidTag:
            raise DecryptionError() from None


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256: the keyed blind index and the grant signature."""
    mac = _hmac.HMAC(key, hashes.SHA256())
    mac.update(message)
    return mac.finalize()


class Mac:
    """HMAC-SHA256 under one key, keyed once: each digest copies the keyed state (half the
    cost of keying per message; the audit chain makes one per row)."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        self._keyed = _hmac.HMAC(key, hashes.SHA256())

    def __repr__(self) -> str:
        return "Mac(<redacted>)"

    def hexdigest(self, message: bytes) -> str:
        mac = self._keyed.copy()
        mac.update(message)
        return mac.finalize().hex()


def hmac_verify(key: bytes, message: bytes, tag: bytes) -> bool:
    """Constant-time HMAC-SHA256 verification."""
    mac = _hmac.HMAC(key, hashes.SHA256())
    mac.update(message)
    try:
        mac.verify(tag)
    except InvalidSignature:
        return False
    return True


def equal(a: str, b: str) -> bool:
    """Constant-time comparison of two hex digests (stored MACs against computed ones)."""
    return _compare.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def ed25519_public(seed: bytes) -> bytes:
    """The raw 32-byte Ed25519 public key of a 32-byte private seed."""
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def ed25519_sign(seed: bytes, message: bytes) -> bytes:
    """An Ed25519 signature (audit checkpoints: verifiable with the public key alone)."""
    return Ed25519PrivateKey.from_private_bytes(seed).sign(message)


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is `public`'s over `message`; a malformed key or signature is False."""
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
