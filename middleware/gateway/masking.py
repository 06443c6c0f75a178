"""Masking free text the gateway keeps outside the vault: log lines, typed purposes.

What the detector's global patterns find becomes `[TYPE]`; with `recent`, values this
worker vaulted lately (context-only ones such as a PIN) become `[REDACTED]` too.
"""

from __future__ import annotations

from collections.abc import Callable

from coatcheck.middleware.detect import Detector
from coatcheck.middleware.gateway.recent import RecentValues

__all__ = ["Redact", "detector_redactor"]

Redact = Callable[[str], str]


def detector_redactor(detector: Detector, recent: RecentValues | None = None) -> Redact:
    """Replace global-pattern matches with `[TYPE]`, then recently vaulted values."""

    def redact(text: str) -> str:
        spans = sorted(detector.detect(text), key=lambda s: s.start, reverse=True)
        for span in spans:
            text = f"{text[: span.start]}[{span.entity_type}]{text[span.end :]}"
        return text if recent is None else recent.redact(text)

    return redact
