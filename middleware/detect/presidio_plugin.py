"""presidio-analyzer recognizers as plug-ins (`detection.presidio`), imported lazily.

Users name presidio's predefined pattern recognizers (`UkNinoRecognizer`,
`DeTaxIdRecognizer`, ...) and/or point at their own presidio recognizer YAML; their results
join ours as candidates (rule `presidio:<RecognizerName>`) and go through the same overlap
resolution. presidio is imported only when this section is configured, so start-up time and
memory do not pay for it otherwise.

Gate: all the recognizers' regexes are joined into one alternation, searched once per
message; a message in which none of them can match runs no recognizer (one C-level scan).
Recognizers are called directly (no NLP engine, no context enhancer): a result's score is
the pattern's own, or 1.0 when presidio's checksum validated it (then it is a validated
candidate, ranked with our checksummed ones).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from coatcheck.grammar import TYPE_NAME_RULE, is_type_name
from coatcheck.middleware.detect.errors import ConfigError
from coatcheck.middleware.detect.recognizers import Candidate

__all__ = ["PRESIDIO_RULE_PREFIX", "PresidioPlugin"]

PRESIDIO_RULE_PREFIX = "presidio:"


class PresidioPlugin:
    """presidio pattern recognizers by name and from YAML, behind one gate."""

    def __init__(self, names: tuple[str, ...], yaml_path: str | None, min_score: float) -> None:
        from presidio_analyzer import PatternRecognizer, RecognizerRegistry, predefined_recognizers

        recognizers: list[Any] = []
        for index, name in enumerate(names):
            cls = getattr(predefined_recognizers, name, None)
            if not (isinstance(cls, type) and issubclass(cls, PatternRecognizer)):
                raise ConfigError(
                    f"detection.presidio.recognizers.{index}",
                    "not a predefined presidio pattern recognizer",
                )
            recognizers.append(cast(Any, cls)())
        if yaml_path is not None:
            registry = RecognizerRegistry(recognizers=[])
            try:
                registry.add_recognizers_from_yaml(Path(yaml_path))
            except Exception as exc:  # OSError, YAML, regex and schema errors of the loader
                raise ConfigError("detection.presidio.yaml", type(exc).__name__) from None
            recognizers.extend(registry.recognizers)
        for recognizer in recognizers:
            for entity in recognizer.supported_entities:
                if not is_type_name(entity):
                    raise ConfigError("detection.presidio", TYPE_NAME_RULE)
        self._recognizers = tuple(recognizers)
        self._min_score = min_score
        self._gate = _gate(recognizers)

    @property
    def entity_types(self) -> frozenset[str]:
        """Every type the plug-ins can report."""
        return frozenset(e for r in self._recognizers for e in r.supported_entities)

    def find(self, text: str) -> Iterator[Candidate]:
        """The plug-ins' results as candidates (none when the gate says none can match)."""
        if self._gate is not None and self._gate.search(text) is None:
            return
        for recognizer in self._recognizers:
            for result in recognizer.analyze(text, recognizer.supported_entities, None):
                if result.score < self._min_score or result.end <= result.start:
                    continue
                yield Candidate(
                    result.start,
                    result.end,
                    result.entity_type,
                    PRESIDIO_RULE_PREFIX + recognizer.name,
                    result.score >= 1.0,
                    min(1.0, result.score),
                )


def _gate(recognizers: list[Any]) -> Any:
    """One alternation of every pattern (presidio's regex engine and flags), or None when
    they cannot be joined (then every recognizer runs)."""
    import regex  # presidio's own regex engine (a dependency of presidio-analyzer)

    pieces = [
        f"(?:{pattern.regex})"
        for recognizer in recognizers
        for pattern in getattr(recognizer, "patterns", ())
    ]
    if not pieces or any(not getattr(r, "patterns", None) for r in recognizers):
        return None
    flags = {getattr(r, "global_regex_flags", None) for r in recognizers}
    if len(flags) != 1:
        return None
    try:
        return regex.compile("|".join(pieces), flags.pop() or 0)
    except regex.error:
        return None
