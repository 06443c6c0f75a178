"""Overlap resolution: context rule > validated pattern > unvalidated pattern (and presidio
plug-ins) > names tier (NER, gazetteers, the model-free name rules); on equal rank the
longest span, then a built-in recognizer over a presidio plug-in, then the higher score
(context words), then leftmost."""

from __future__ import annotations

from collections.abc import Iterable

from coatcheck.middleware.detect.recognizers import Candidate

__all__ = ["resolve_overlaps"]

# The "names and places" tier: the model's entities and gazetteer hits, below any pattern.
_STATISTICAL = frozenset({"ner", "gazetteer", "names"})


def _rank(candidate: Candidate) -> int:
    if candidate.rule == "context":
        return 3
    if candidate.rule in _STATISTICAL:
        return 0
    if candidate.rule.startswith("presidio:"):
        return 1  # plug-ins rank as unvalidated patterns: no locale prunes, other scores
    return 2 if candidate.validated else 1


def resolve_overlaps(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Keep the best non-overlapping candidates, sorted by start."""
    ordered = sorted(
        candidates,
        key=lambda c: (
            -_rank(c),
            -(c.end - c.start),
            c.rule.startswith("presidio:"),
            -c.score,
            c.start,
            c.entity_type,
        ),
    )
    kept: list[Candidate] = []
    for candidate in ordered:
        if all(candidate.end <= k.start or candidate.start >= k.end for k in kept):
            kept.append(candidate)
    return sorted(kept, key=lambda c: c.start)
