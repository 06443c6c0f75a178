"""Validated field types the YAML config's sections share (pure: pydantic and the grammar).

Each rule lives with the type that declares it, so every section that uses a type name, a
regex, a display string or a duration checks it the same way.  Messages name what is
wrong and never repeat the value (`coatcheck.middleware.config` adds the dotted path).

A validator that knows the error sits deeper than the field it checks (a key of a map, the
`retain` of a retention) raises `AtPath`, whose `path` the loader appends to the field's.
"""

from __future__ import annotations

import importlib
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, model_validator

from coatcheck.grammar import DISPLAY_RE, TYPE_NAME_RULE, is_type_name
from coatcheck.saferegex import UnsafePattern, safe_compile

__all__ = [
    "AtPath",
    "DisplayText",
    "Duration",
    "Regex",
    "Retention",
    "RetentionRule",
    "TypeName",
    "check_regex",
    "parse_duration",
]

_DURATION = re.compile(r"([1-9][0-9]{0,6})([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_DURATION = 3650 * 86400
# The regex parser's width analysis: the only exact answer to "can this match nothing?".
_PARSER: Any = importlib.import_module("re._parser")


class AtPath(ValueError):
    """A validation error located `path` below the field whose validator raised it."""

    def __init__(self, path: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


def _type_name(value: str) -> str:
    if not is_type_name(value):
        raise ValueError(TYPE_NAME_RULE)
    return value


TypeName = Annotated[str, AfterValidator(_type_name)]


def check_regex(value: str) -> str:
    """A pattern that compiles, on RE2 or (lookaround) on `regex` with a time limit
    (`coatcheck.saferegex`: the engine is chosen here, once), and cannot match empty text
    (an empty match vaults nothing and, found at every position, floods the detector)."""
    try:
        re.compile(value)
        safe_compile(value)
    except (re.error, UnsafePattern):
        raise ValueError("not a valid regular expression (RE2, or regex for lookaround)") from None
    if _PARSER.parse(value).getwidth()[0] == 0:
        raise ValueError("the regular expression can match empty text")
    return value


Regex = Annotated[str, AfterValidator(check_regex)]


def _display(value: str) -> str:
    if not value or not DISPLAY_RE.fullmatch(value):
        raise ValueError("must be printable ASCII without space or parentheses")
    return value


DisplayText = Annotated[str, AfterValidator(_display)]


def parse_duration(value: object) -> float:
    """Seconds in a duration such as `30d`, `12h`, `15m`, `45s` (at most 3650d)."""
    match = _DURATION.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError("must be a duration such as 30d, 12h, 15m or 45s")
    seconds = int(match.group(1)) * _UNIT[match.group(2)]
    if seconds > _MAX_DURATION:
        raise ValueError("must be at most 3650d")
    return float(seconds)


Duration = Annotated[float, BeforeValidator(parse_duration)]


class Retention(BaseModel):
    """What ending a conversation does to a type's values (docs/lifecycle.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: Literal["shred", "mask", "retain"]
    retain: Duration | None = None  # how long, for `retain`

    @model_validator(mode="after")
    def _period_for_retain(self) -> Retention:
        if (self.policy == "retain") != (self.retain is not None):
            raise ValueError("a retain policy needs its period, and only it")
        return self


def _retention_forms(value: object) -> object:
    """The YAML forms `shred`, `mask` and `{retain: <duration>}`, as a `Retention`."""
    if isinstance(value, Retention):
        return value
    if value in ("shred", "mask"):
        return {"policy": value}
    if isinstance(value, dict) and set(value) == {"retain"}:
        return {"policy": "retain", "retain": value["retain"]}
    raise ValueError("must be shred, mask or {retain: <duration>}")


RetentionRule = Annotated[Retention, BeforeValidator(_retention_forms)]
