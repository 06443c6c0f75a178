"""A logging filter that redacts PII from every record before any handler formats it.

Installed on the root logger's handlers and on uvicorn's loggers.  It formats the record
(message, args, traceback), runs the detector's global patterns over the result, replaces
each match with `[TYPE]`, and stores the redacted text back with args and exc_info
cleared, so no later formatter can re-render the raw values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from middleware.detect import Detector
from middleware.service.recent import RecentValues

__all__ = ["RedactingFilter", "detector_redactor", "install_log_filter"]

Redact = Callable[[str], str]

_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "fastapi")


def detector_redactor(detector: Detector, recent: RecentValues | None = None) -> Redact:
    """Replace global-pattern matches with `[TYPE]`, then recently vaulted values."""

    def redact(text: str) -> str:
        spans = sorted(detector.detect(text), key=lambda s: s.start, reverse=True)
        for span in spans:
            text = f"{text[: span.start]}[{span.entity_type}]{text[span.end :]}"
        return text if recent is None else recent.redact(text)

    return redact


class RedactingFilter(logging.Filter):
    """Rewrites records in place; never drops one (a lost log line hides incidents)."""

    def __init__(self, redact: Redact) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            # uvicorn's access formatter unpacks the args tuple: keep its shape.
            record.args = tuple(
                self._redact_safely(arg) if isinstance(arg, str) else arg for arg in record.args
            )
            return True
        try:
            text = record.getMessage()
        except Exception:  # a bad format string must not leak its args either
            text = str(record.msg)
        if record.exc_info and record.exc_info[0] is not None:
            text = f"{text}\n{logging.Formatter().formatException(record.exc_info)}"
        elif record.exc_text:
            text = f"{text}\n{record.exc_text}"
        if record.stack_info:
            text = f"{text}\n{record.stack_info}"
        record.msg = self._redact_safely(text)
        record.args = None
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True

    def _redact_safely(self, text: str) -> str:
        try:
            return self._redact(text)
        except Exception:
            return "[log line withheld: redaction failed]"


def install_log_filter(redact: Redact) -> RedactingFilter:
    """Attach one filter to the root logger's handlers and to uvicorn's loggers."""
    flt = RedactingFilter(redact)
    root = logging.getLogger()
    root.addFilter(flt)
    for handler in root.handlers:
        handler.addFilter(flt)
    for name in _UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.addFilter(flt)
        for handler in logger.handlers:
            handler.addFilter(flt)
    return flt


def remove_log_filter(flt: RedactingFilter) -> None:
    """Undo `install_log_filter` (the lifespan calls it on shutdown)."""
    root = logging.getLogger()
    root.removeFilter(flt)
    for handler in root.handlers:
        handler.removeFilter(flt)
    for name in _UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.removeFilter(flt)
        for handler in logger.handlers:
            handler.removeFilter(flt)
