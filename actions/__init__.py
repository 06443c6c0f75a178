"""coatcheck for rasa-sdk custom actions: opt-in reveals, checks and confirmation prompts.

Public API (documented in docs/actions.md): `RevealingAction` / `reveals` to opt in,
`is_reference` and `accepts_reference` for validators that do not, the check helpers,
the directive helpers, `CoatcheckClient`, and the `CoatcheckActionError` root.
"""

from coatcheck.actions._references import Reference, find_references, is_reference, parse_reference
from coatcheck.actions.checks import (
    accepts_reference,
    check_reference,
    check_slot,
)
from coatcheck.actions.client import CoatcheckClient, GrantToken
from coatcheck.actions.errors import (
    ActionFailed,
    CoatcheckActionError,
    ConfigurationError,
    GrantRefused,
    InvalidArgument,
    RevealRefused,
    ServiceError,
    ServiceUnavailable,
    UnsupportedValue,
)
from coatcheck.actions.prompts import (
    CAPTURE_INTENT,
    CaptureResult,
    capture_directive,
    capture_result,
    confirmation,
    request_capture,
    utter_capture,
    utter_confirmation,
)
from coatcheck.actions.retokenize import Retokenizer
from coatcheck.actions.reveal import RevealedView, RevealingAction, reveals

__all__ = [
    "CAPTURE_INTENT",
    "ActionFailed",
    "CaptureResult",
    "CoatcheckActionError",
    "CoatcheckClient",
    "ConfigurationError",
    "GrantRefused",
    "GrantToken",
    "InvalidArgument",
    "Reference",
    "Retokenizer",
    "RevealRefused",
    "RevealedView",
    "RevealingAction",
    "ServiceError",
    "ServiceUnavailable",
    "UnsupportedValue",
    "accepts_reference",
    "capture_directive",
    "capture_result",
    "check_reference",
    "check_slot",
    "confirmation",
    "find_references",
    "is_reference",
    "parse_reference",
    "request_capture",
    "reveals",
    "utter_capture",
    "utter_confirmation",
]
