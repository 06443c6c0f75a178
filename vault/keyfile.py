"""Loading, validating and creating the master key.

The master key comes from `COATCHECK_MASTER_KEY` (base64) or a key file (base64 text,
created on first run from `os.urandom`, written 0600 atomically so two workers starting
together end up with the same key).  Placeholders and short keys are refused at start,
naming the setting, because a guessable master key silently voids every other control.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
from pathlib import Path

from coatcheck.vault.errors import KeyConfigError

__all__ = ["MIN_MASTER_KEY_BYTES", "load_master_key", "validate_master_key"]

MIN_MASTER_KEY_BYTES = 32
_PLACEHOLDERS = ("changeme", "change-me", "change_me", "secret", "password", "example", "test")
_MIN_DISTINCT_BYTES = 8


def validate_master_key(key: bytes, setting: str) -> bytes:
    """Return `key` if usable; raise `KeyConfigError(setting)` otherwise."""
    lowered = key.lower()
    if len(key) < MIN_MASTER_KEY_BYTES:
        raise KeyConfigError(setting, f"{setting}: master key must be >= 32 bytes")
    if any(lowered.startswith(p.encode()) for p in _PLACEHOLDERS):
        raise KeyConfigError(setting, f"{setting}: master key is a placeholder")
    if len(set(key)) < _MIN_DISTINCT_BYTES:
        raise KeyConfigError(setting, f"{setting}: master key has too little variety")
    return key


def _decode(text: str, setting: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyConfigError(setting, f"{setting}: not valid base64") from None


def _create_key_file(path: Path) -> None:
    """Write a fresh key to `path` unless another process wins the race (then keep theirs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64encode(os.urandom(MIN_MASTER_KEY_BYTES)) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_master_key(master_key_b64: str | None, key_file: Path) -> bytes:
    """The validated master key from the env value, else the key file (created if absent)."""
    if master_key_b64 is not None:
        return validate_master_key(
            _decode(master_key_b64, "COATCHECK_MASTER_KEY"), "COATCHECK_MASTER_KEY"
        )
    if not key_file.exists():
        _create_key_file(key_file)
    try:
        text = key_file.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        raise KeyConfigError(
            "COATCHECK_KEY_FILE", "COATCHECK_KEY_FILE: cannot read the key file"
        ) from None
    return validate_master_key(_decode(text, "COATCHECK_KEY_FILE"), "COATCHECK_KEY_FILE")
