"""Loading, validating and creating the master key.

The master key comes from `COATCHECK_MASTER_KEY` (base64) or a key file (base64 text,
created on first run from `os.urandom`, written 0600 atomically so two workers starting
together end up with the same key).  Placeholders and short keys are refused at start,
naming the setting, because a guessable master key silently voids every other control.
A key file open to group or others is refused too (one line naming the file and the
`chmod` that fixes it): anyone who can read it can read every vaulted value.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import stat
from pathlib import Path

from coatcheck.vault.errors import KeyConfigError

__all__ = [
    "MIN_MASTER_KEY_BYTES",
    "load_master_key",
    "parse_master_key",
    "read_key_file",
    "validate_master_key",
]

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


def parse_master_key(text: str, setting: str) -> bytes:
    """The validated master key in base64 `text`; errors name `setting`, never the value."""
    return validate_master_key(_decode(text, setting), setting)


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


def _read_private(path: Path, setting: str) -> str:
    """The file's text, refused when group or others have any access to it."""
    try:
        fd = os.open(path, os.O_RDONLY)
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a directory opens, then fails to read
            os.close(fd)
            raise OSError(path)
    except OSError:
        raise KeyConfigError(setting, f"{setting}: cannot read the key file {path}") from None
    with os.fdopen(fd, "rb") as handle:
        mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)  # the file read, not a path
        if mode & 0o077:
            raise KeyConfigError(
                setting,
                f"{setting}: key file {path} has mode {mode:04o}, open to group or others; "
                f"fix: chmod 600 {path}",
            )
        try:
            return handle.read().decode("ascii")
        except (OSError, UnicodeDecodeError):
            raise KeyConfigError(setting, f"{setting}: cannot read the key file {path}") from None


def read_key_file(path: Path, setting: str = "COATCHECK_KEY_FILE") -> bytes:
    """The validated master key in `path` (created 0600 if absent; refused if not private)."""
    if not path.exists():
        _create_key_file(path)
    return parse_master_key(_read_private(path, setting), setting)


def load_master_key(master_key_b64: str | None, key_file: Path) -> bytes:
    """The validated master key from the env value, else the key file (created if absent)."""
    if master_key_b64 is not None:
        return parse_master_key(master_key_b64, "COATCHECK_MASTER_KEY")
    return read_key_file(key_file)
