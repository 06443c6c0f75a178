"""Every entity type detection can emit, read from detection's own tables.

The config refuses a name under `types:` that is not one of these (nor a custom type, nor
a context rule of its own), so a misspelt type fails at start instead of never matching.
Read, not written down: the built-in recognizers (every region's national ids, whatever
the configured locales), the model-free finders (phones, names, addresses), the NER
labels and place gazetteer, the context rules' types, and the presidio plug-ins a config
names.
"""

from __future__ import annotations

from coatcheck.middleware.detect.address import ADDRESS_TYPE
from coatcheck.middleware.detect.config import DetectionSettings
from coatcheck.middleware.detect.context_rules import DEFAULT_RULES
from coatcheck.middleware.detect.names import PERSON_TYPE
from coatcheck.middleware.detect.ner import NER_TYPES
from coatcheck.middleware.detect.phone import ID_NUMBER_TYPE, PHONE_TYPE
from coatcheck.middleware.detect.places import PLACE_TYPE
from coatcheck.middleware.detect.recognizers import BUILTIN_RECOGNIZERS, REGION_TYPES

__all__ = ["BUILTIN_TYPES", "known_types"]

BUILTIN_TYPES: frozenset[str] = frozenset(
    {r.entity_type for r in BUILTIN_RECOGNIZERS}
    | {r.entity_type for regional in REGION_TYPES.values() for r in regional}
    | {PHONE_TYPE, ID_NUMBER_TYPE, PERSON_TYPE, ADDRESS_TYPE, PLACE_TYPE}
    | NER_TYPES
    | set(DEFAULT_RULES)
)


def known_types(detection: DetectionSettings) -> frozenset[str]:
    """The built-in types plus those of the presidio plug-ins `detection` configures
    (loading them: a section that cannot load raises its `ConfigError`, naming the field)."""
    if detection.presidio is None:
        return BUILTIN_TYPES
    from coatcheck.middleware.detect.presidio_plugin import PresidioPlugin

    settings = detection.presidio
    plugin = PresidioPlugin(settings.recognizers, settings.yaml, settings.min_score)
    return BUILTIN_TYPES | plugin.entity_types
