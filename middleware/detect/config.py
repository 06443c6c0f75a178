"""The typed YAML config for detection and display: `types:`, `custom_types:`, `detection:`.

Validated once at start; a bad value raises `ConfigError` naming the dotted field
(`types.PIN.mask.first`) and never echoing the value.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from coatcheck.grammar import TYPE_NAME_RE as _TYPE_NAME
from coatcheck.grammar import TYPE_NAME_RULE
from coatcheck.middleware.config_fields import DisplayText, Duration, Regex, RetentionRule
from coatcheck.middleware.detect.errors import ConfigError
from coatcheck.middleware.detect.validators import VALIDATORS

__all__ = [
    "CustomType",
    "DetectConfig",
    "DetectionSettings",
    "MaskSettings",
    "TypeSettings",
    "load_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MaskSettings(_Strict):
    """How many leading/trailing characters a `mask` display hides, and with which symbol."""

    first: int = Field(default=0, ge=0, le=64)
    last: int = Field(default=4, ge=0, le=64)
    symbol: Literal["+", "#"] = "+"


class TypeSettings(_Strict):
    """Per-type behaviour: display mode, confirmation, and the context-rule capture."""

    display: Literal["redaction", "replacement", "mask"] = "redaction"
    mask: MaskSettings = MaskSettings()
    replacement: DisplayText | None = Field(default=None, validate_default=True)
    confirm: bool = False
    capture: Literal["pattern", "whole"] | None = None
    pattern: Regex | None = None
    # The lifecycle (docs/lifecycle.md): what the end does to values, when they expire.
    retention: RetentionRule | None = None
    ttl: Duration | None = None

    @field_validator("replacement")
    @classmethod
    def _needed_by_display(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("display") == "replacement":
            raise ValueError("required when display is replacement")
        return value


class CustomType(TypeSettings):
    """A customer-defined information type found by its own regex."""

    name: str
    regex: Regex
    validator: str | None = None
    context: list[str] = []
    context_required: bool = False
    entities: list[str] = []

    @field_validator("name")
    @classmethod
    def _upper(cls, value: str) -> str:
        if not _TYPE_NAME.fullmatch(value):
            raise ValueError(TYPE_NAME_RULE)
        return value

    @field_validator("validator")
    @classmethod
    def _known_validator(cls, value: str | None) -> str | None:
        if value is not None and value not in VALIDATORS:
            raise ValueError(f"unknown validator; known: {', '.join(sorted(VALIDATORS))}")
        return value


class DetectionSettings(_Strict):
    """Global detection switches."""

    @property
    def addresses_on(self) -> bool:
        """Whether the ADDRESS patterns run (`addresses`, else follows `ner`)."""
        return self.ner if self.addresses is None else self.addresses

    @property
    def places_on(self) -> bool:
        """Whether the place gazetteer runs (only with `ner`; `places`, else follows it)."""
        return self.ner and (self.places is None or self.places)

    default_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    ner: bool = False
    # Street addresses by pattern (no model); unset = on exactly when `ner` is on, since
    # both are the "names and places" tier whose false positives cost more than patterns'.
    addresses: bool | None = None
    # Place names from the GeoNames gazetteer next to the model (needs `ner`); unset = on
    # with `ner`. Cities below `place_min_population` inhabitants are left out.
    places: bool | None = None
    place_min_population: Literal[500, 1000, 5000, 15000] = 15000  # GeoNames' city tables
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    thresholds: dict[str, float] = {}


class DetectConfig(BaseModel):
    """The sections of the YAML file that detection and rendering own."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    types: dict[str, TypeSettings] = {}
    custom_types: list[CustomType] = []
    detection: DetectionSettings = DetectionSettings()

    @field_validator("types")
    @classmethod
    def _type_names(cls, value: dict[str, TypeSettings]) -> dict[str, TypeSettings]:
        for name in value:
            if not _TYPE_NAME.fullmatch(name):
                raise ValueError(TYPE_NAME_RULE)
        return value

    def settings_for(self, entity_type: str) -> TypeSettings:
        """The effective settings of a type (custom types carry their own)."""
        for custom in self.custom_types:
            if custom.name == entity_type:
                return custom
        return self.types.get(entity_type, TypeSettings())

    def confirm_types(self) -> frozenset[str]:
        """Types whose references the gateway reveals on the channel leg."""
        names = {name for name, item in self.types.items() if item.confirm}
        return frozenset(names | {c.name for c in self.custom_types if c.confirm})


def load_config(data: dict[str, Any] | None) -> DetectConfig:
    """Validate the YAML dict; the error names the first bad field, not its value."""
    try:
        return DetectConfig.model_validate(data or {})
    except ValidationError as exc:
        first = exc.errors(include_input=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "config"
        raise ConfigError(field, first["msg"]) from None
