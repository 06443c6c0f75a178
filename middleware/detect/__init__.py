"""Detection, pure: normalise, recognize, apply the context rule, resolve overlaps."""

from importlib.machinery import EXTENSION_SUFFIXES

from coatcheck.middleware.detect import scan as _scan
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
    "compiled",
    "defang",
    "invalidate",
    "known_types",
    "load_config",
    "normalise",
]


def compiled() -> bool:
    """Whether the detector's hot modules run compiled (a wheel built with mypyc: setup.py)
    or as Python (an editable install, or a build without a C compiler)."""
    return (_scan.__file__ or "").endswith(tuple(EXTENSION_SUFFIXES))
