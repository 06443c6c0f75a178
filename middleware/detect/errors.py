"""The one exception root of detection: errors name the offending field, never a value."""

from __future__ import annotations

__all__ = ["ConfigError", "DetectError", "UnknownTypeError"]


class DetectError(Exception):
    """Root of every detection error; carries a name, never a user value."""

    default_message = "detection failed"

    def __init__(self, name: str = "", message: str | None = None) -> None:
        self.name = name
        text = message or self.default_message
        super().__init__(f"{name}: {text}" if name else text)


class ConfigError(DetectError):
    """The YAML detection config is invalid; `name` is the dotted field path."""

    default_message = "invalid configuration value"


class UnknownTypeError(DetectError):
    """A context rule asked for a type that has no pattern and no whole capture."""

    default_message = "unknown entity type for a context rule"
