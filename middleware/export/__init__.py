"""Export controls: what a conversation record may carry when it leaves for a third party.

Records sent to an analytics webhook or a JSONL sink pass `apply_export_config` first. The
policy is privacy-first: with no config only the mandatory fields leave, and a config can
widen (allow list) or narrow (deny list) that, but never drop the mandatory fields. See
docs/export.md. Errors, under one root::

    ExportError
    └── ExportSinkError(sink)    a record could not be delivered (names the sink, no content)

Config problems are pydantic `ValidationError`s naming the offending path.
"""

from coatcheck.middleware.export.config import (
    MANDATORY_FIELDS,
    PRIVACY_FIRST,
    ExportConfig,
    ExportSection,
    OutboxSettings,
    SinkSpec,
)
from coatcheck.middleware.export.errors import ExportError, ExportSinkError
from coatcheck.middleware.export.record import ConversationRecord, EntityRef, Turn
from coatcheck.middleware.export.redact import apply_export_config
from coatcheck.middleware.export.sinks import (
    ExportSink,
    JsonlSink,
    WebhookSink,
    build_sinks,
    sink_key,
)

__all__ = [
    "MANDATORY_FIELDS",
    "PRIVACY_FIRST",
    "ConversationRecord",
    "EntityRef",
    "ExportConfig",
    "ExportError",
    "ExportSection",
    "ExportSink",
    "ExportSinkError",
    "JsonlSink",
    "OutboxSettings",
    "SinkSpec",
    "Turn",
    "WebhookSink",
    "apply_export_config",
    "build_sinks",
    "sink_key",
]
