"""The one start-up error: `ConfigError`, a single line naming what to fix, never a value.

`COATCHECK_CONFIG: types.EMAIL_ADDRESS.mask.first: Input should be ...` for the YAML file
(the dotted path inside it), `COATCHECK_PORT: ...` for an environment setting.  Both the
file's model and the environment settings turn pydantic's errors into it here.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from coatcheck.middleware.config_fields import AtPath

__all__ = ["ConfigError", "error_message", "error_path", "from_validation"]


class ConfigError(ValueError):
    """A setting is invalid: `setting` (the variable), `path` (dotted, inside the file)."""

    def __init__(self, setting: str, message: str, path: str = "") -> None:
        self.setting = setting
        self.path = path
        self.message = message
        where = f"{setting}: {path}" if path else setting
        super().__init__(f"{where}: {message}")

    @property
    def name(self) -> str:
        """What to fix: the dotted path in the file, else the variable."""
        return self.path or self.setting


def _cause(error: Any) -> object:
    ctx = error.get("ctx")
    return ctx.get("error") if isinstance(ctx, dict) else None


def error_path(error: Any) -> str:
    """The dotted location of one pydantic error (a map key's `[key]` marker dropped)."""
    parts = [str(part) for part in error["loc"] if part != "[key]"]
    cause = _cause(error)
    if isinstance(cause, AtPath):
        parts += cause.path
    return ".".join(parts)


def error_message(error: Any) -> str:
    """pydantic's message without the input; our validators' own words as they are."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "union_tag_invalid":  # pydantic's message quotes the tag it was given
        return f"unknown kind; expected one of: {error['ctx']['expected_tags']}"
    cause = _cause(error)
    if kind == "value_error" and isinstance(cause, ValueError):
        return str(cause)
    return str(error["msg"])


def from_validation(exc: ValidationError, setting: str) -> ConfigError:
    """The first error of `exc` as one `ConfigError` line."""
    first = exc.errors(include_input=False)[0]
    return ConfigError(setting, error_message(first), error_path(first))
