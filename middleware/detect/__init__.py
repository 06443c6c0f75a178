"""Detection, pure: normalise, recognize, apply the context rule, resolve overlaps."""

from coatcheck.middleware.detect.catalogue import BUILTIN_TYPES, known_types
from coatcheck.middleware.detect.config import (
    CustomType,
    DetectConfig,
    DetectionSettings,
    KeepSettings,
    MaskSettings,
    PresidioSettings,
    TypeSettings,
    load_config,
)
from coatcheck.middleware.detect.context_rules import DEFAULT_RULES, Rule
from coatcheck.middleware.detect.detector import Detector
from coatcheck.middleware.detect.errors import ConfigError, DetectError, UnknownTypeError
from coatcheck.middleware.detect.normalise import Normalised, defang, normalise
from coatcheck.middleware.detect.recognizers import BUILTIN_RECOGNIZERS, Recognizer, invalidate
from coatcheck.middleware.detect.spans import Capture, Context, Span
from coatcheck.middleware.detect.validators import VALIDATORS

__all__ = [
    "BUILTIN_RECOGNIZERS",
    "BUILTIN_TYPES",
    "DEFAULT_RULES",
    "VALIDATORS",
    "Capture",
    "ConfigError",
    "Context",
    "CustomType",
    "DetectConfig",
    "DetectError",
    "DetectionSettings",
    "Detector",
    "KeepSettings",
    "MaskSettings",
    "Normalised",
    "PresidioSettings",
    "Recognizer",
    "Rule",
    "Span",
    "TypeSettings",
    "UnknownTypeError",
    "defang",
    "invalidate",
    "known_types",
    "load_config",
    "normalise",
]
