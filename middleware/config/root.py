"""The root model of the YAML file (`COATCHECK_CONFIG`): every section typed, frozen.

Loaded once at start (`load_config`); nothing else parses the file.  Unknown keys are
refused at every level, and each rule is checked where it is declared: the field types in
`config_fields` (type names, regexes, displays, durations, retention), the sections in the
parts that own them (`detection:` in `detect/config.py`, `export:` in `export/config.py`,
`external:` endpoints in `external/config.py`), and here what ties sections together: a
name under `types:` must be a type coatcheck knows, an external type must be findable.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from coatcheck.middleware.config.checks import ChecksSection
from coatcheck.middleware.config_fields import AtPath, TypeName
from coatcheck.middleware.detect import (
    BUILTIN_TYPES,
    CustomType,
    DetectConfig,
    DetectionSettings,
    TypeSettings,
    known_types,
)
from coatcheck.middleware.export import ExportSection
from coatcheck.middleware.external import EndpointConfig
from coatcheck.vault import Policies
from coatcheck.vault import Retention as VaultRetention

__all__ = [
    "ActionName",
    "CoatcheckConfig",
    "GrantsSection",
    "IdempotencySection",
    "LimitsSection",
    "LlmSection",
    "RepliesSection",
    "UiSection",
    "builtin_types",
]

ActionName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


def builtin_types(detection: DetectionSettings) -> frozenset[str]:
    """The types detection can emit without a custom regex (`detect.known_types`: its
    recognizers, finders, NER labels, context rules, and the plug-ins `detection` names)."""
    return known_types(detection)


class GrantsSection(BaseModel):
    """`grants:` — how long an action's grant lives (docs/actions.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttl_seconds: float = Field(default=30.0, gt=0, le=3600, strict=True)


class RepliesSection(BaseModel):
    """`replies:` — the bot's replies on their way back (docs/config.md).

    Values the bot writes are always vaulted and stored as references (history, logs,
    exports, the viewer); `mask_channel: true` sends the channel that reference form too,
    instead of the reply as the bot wrote it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mask_channel: bool = Field(default=False, strict=True)


class LimitsSection(BaseModel):
    """`limits:` — what one API key and one conversation may use (docs/operations.md).

    The per-sender limit stays `COATCHECK_RATE_LIMIT`; these bound what rotating senders
    cannot dodge: messages per channel key, `/v1/redact` calls per key and per
    conversation, all in fixed windows of `window_seconds`, counted in the database (they
    hold across workers).  `values_per_conversation` caps the values vaulted in one key
    epoch (a message or redact that would pass it is refused, 429, nothing vaulted).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_seconds: int = Field(default=60, ge=1, le=86400, strict=True)
    # A channel key carries a whole channel's traffic: its default is a ceiling against a
    # runaway or stolen key (2,000 messages/s), not a per-user limit.
    messages_per_key: int = Field(default=120_000, ge=1, strict=True)
    redact_per_key: int = Field(default=60_000, ge=1, strict=True)
    redact_per_conversation: int = Field(default=600, ge=1, strict=True)
    values_per_conversation: int = Field(default=5000, ge=1, strict=True)


class IdempotencySection(BaseModel):
    """`idempotency:` — how long a channel's message id is remembered (docs/service.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_seconds: float = Field(default=86400.0, ge=60, le=30 * 86400, strict=True)


StaffRole = Literal["viewer", "agent", "auditor", "admin"]


class UiSection(BaseModel):
    """`ui:` — which staff roles open the audit view (docs/ui.md); admin always may."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    audit_roles: frozenset[StaffRole] = frozenset({"auditor", "admin"})


class LlmSection(BaseModel):
    """`llm:` — the OpenAI-compatible gateway (docs/llm.md).

    `response_pii`: what happens to a value the model writes that this request never sent
    (an address it invented or remembered): `redact` (default) shows `[REDACTED_<LABEL>]`,
    `pass` lets it through (only this request's placeholders are restored either way).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    response_pii: Literal["redact", "pass"] = "redact"


class CoatcheckConfig(BaseModel):
    """The whole file.  Fields are checked in this order (later checks read earlier ones)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    detection: DetectionSettings = DetectionSettings()
    custom_types: tuple[CustomType, ...] = ()
    types: dict[TypeName, TypeSettings] = {}
    # The allow-list of opt-in reveals: {action name: [TYPE, ...]} (docs/actions.md).
    actions: dict[ActionName, frozenset[TypeName]] = {}
    grants: GrantsSection = GrantsSection()
    checks: ChecksSection = ChecksSection()
    replies: RepliesSection = RepliesSection()
    export: ExportSection = ExportSection()
    external: dict[TypeName, EndpointConfig] = {}
    limits: LimitsSection = LimitsSection()
    idempotency: IdempotencySection = IdempotencySection()
    ui: UiSection = UiSection()
    llm: LlmSection = LlmSection()

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        """A section left empty in the file (`export:` with its lines commented out)."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data

    @field_validator("types")
    @classmethod
    def _known_types(
        cls, value: dict[str, TypeSettings], info: ValidationInfo
    ) -> dict[str, TypeSettings]:
        """A name under `types:` is one detection emits, a custom type, or a context rule
        of its own (a `pattern`, or `capture: whole`); anything else is a misspelling."""
        custom = {c.name for c in info.data.get("custom_types", ())}
        unknown = [
            name
            for name, settings in value.items()
            if name not in BUILTIN_TYPES | custom
            and settings.pattern is None
            and settings.capture != "whole"
        ]
        if not unknown:
            return value
        # Only now: the presidio plug-ins a config names load slowly.  One that cannot load
        # raises its DetectError, naming its own field (`config_from_data` reports it).
        known = builtin_types(info.data.get("detection", DetectionSettings()))
        for name in unknown:
            if name not in known:
                raise AtPath(
                    (name,),
                    "unknown entity type: not built in, not in custom_types, and no pattern "
                    "or capture of its own",
                )
        return value

    @field_validator("external")
    @classmethod
    def _findable(
        cls, value: dict[str, EndpointConfig], info: ValidationInfo
    ) -> dict[str, EndpointConfig]:
        """An external type must be found in messages (a custom regex or a context
        pattern), and may not be a confirmation type: the reply path would show the end
        user the customer's id, not the value."""
        customs = {c.name: c for c in info.data.get("custom_types", ())}
        types: dict[str, TypeSettings] = info.data.get("types", {})
        for name in value:
            settings = customs.get(name) or types.get(name) or TypeSettings()
            if name not in customs and settings.pattern is None:
                raise AtPath((name,), f"needs a custom_types regex or types.{name}.pattern")
            if settings.confirm:
                raise AtPath((name,), "confirmation prompts cannot show externally held values")
        return value

    def detect_config(self) -> DetectConfig:
        """The sections detection and rendering read."""
        return DetectConfig(
            types=self.types, custom_types=list(self.custom_types), detection=self.detection
        )

    def policies(self) -> Policies:
        """Retention and TTL per type for the vault; types without `retention` are shredded
        at the end (privacy first), types without `ttl` live as long as retention allows."""
        entries = [*self.types.items(), *((c.name, c) for c in self.custom_types)]
        retention = {
            name: VaultRetention(s.retention.policy, s.retention.retain)
            for name, s in entries
            if s.retention is not None
        }
        ttl = {name: s.ttl for name, s in entries if s.ttl is not None}
        return Policies(retention=retention, ttl=ttl)
