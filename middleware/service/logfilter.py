"""A logging filter that redacts PII from every record before any handler formats it.

Installed on the root logger's handlers and on uvicorn's loggers.  It formats the record
(message, args, traceback), runs the detector's global patterns over the result, replaces
each match with `[TYPE]`, and stores the redacted text back with args and exc_info
cleared, so no later formatter can re-render the raw values.

Control characters from requests are escaped (`\\x1b`, `\\x0d`, `\\u2028`...): an access
line's path is percent-decoded before it is redacted, so `%0D%0A` in a URL would otherwise
start a forged line, `%1B[` would drive the operator's terminal, `%E2%80%A8` (U+2028) would
break the line for Unicode-aware readers and `%E2%80%AE` (U+202E) would reverse it.
uvicorn's "running on" line is kept as it is: its address is the service's own listen
address, from the operator's config.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from urllib.parse import unquote

from coatcheck.middleware.gateway.masking import Redact, detector_redactor

__all__ = ["FIXED_PATHS", "RedactingFilter", "detector_redactor", "install_log_filter"]

# uvicorn's access-log format and the routes whose path holds no caller-chosen text.
_ACCESS_FORMAT = '%s - "%s %s HTTP/%s" %d'
FIXED_PATHS = frozenset(
    {
        "/webhooks/rest/webhook",
        "/v1/redact",
        "/v1/grants",
        "/v1/reveal",
        "/v1/check",
        "/health",
        "/ready",
        "/metrics",
    }
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "fastapi")
_LISTENING = "Uvicorn running on "  # uvicorn's start-up line (config.py, server.py)

# C0 controls, DEL and C1 controls: in a request's text (path, method, client) all of them;
# in other records all but tab and newline (tracebacks are multi-line).  Plus the Unicode
# line and paragraph separators (a line break to `splitlines` and to JavaScript log
# viewers) and the bidi controls (U+202E makes a line read otherwise than it is).
_UNICODE_BREAKERS = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_CONTROLS = re.compile(f"[\x00-\x1f\x7f-\x9f{_UNICODE_BREAKERS}]")
_CONTROLS_BUT_LAYOUT = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_UNICODE_BREAKERS}]")


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _escape(text: str, pattern: re.Pattern[str] = _CONTROLS) -> str:
    """`text` with each control character written as `\\xNN` / `\\uNNNN` (one line, inert)."""
    return pattern.sub(lambda m: _escaped(m.group()), text)


_DONE = "_coatcheck_redacted"  # set on a record once rewritten


class RedactingFilter(logging.Filter):
    """Rewrites records in place; never drops one (a lost log line hides incidents).

    Installed on the loggers and on their handlers, it sees a record more than once; it
    rewrites it once (a second pass would redact the rewritten line again: the access
    line's masked client `[IP_ADDRESS]:port` is no address, so it went to the detector on
    every request)."""

    def __init__(self, redact: Redact) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _DONE, False):
            return True
        setattr(record, _DONE, True)
        if _is_access(record):
            return self._access(record)
        if _is_listening(record):
            return True
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            # uvicorn's access formatter unpacks the args tuple: keep its shape.
            record.args = tuple(
                _escape(self._redact_safely(arg)) if isinstance(arg, str) else arg
                for arg in record.args
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
        record.msg = _escape(self._redact_safely(text), _CONTROLS_BUT_LAYOUT)
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

    def _access(self, record: logging.LogRecord) -> bool:
        """uvicorn's access line: only the client address and the path can carry PII.

        Every request logs one, so it gets the cheap treatment (the detector over each arg
        cost about as much as the gateway's own database work): a client IP is masked
        without the detector, a fixed route path (no path parameter, no query) is kept, and
        anything else is percent-decoded (uvicorn logs `jane%40example.com`, which no
        pattern matches), goes through the redactor and has its control characters escaped.
        The args stay a 5-tuple: uvicorn's AccessFormatter unpacks them.
        """
        client, method, path, version, status = record.args  # type: ignore[misc]
        record.args = (
            _escape(_mask_client(str(client), self._redact_safely)),
            method if method in _METHODS else _escape(self._redact_safely(str(method))),
            path if path in FIXED_PATHS else _escape(self._redact_safely(unquote(str(path)))),
            _escape(str(version)),
            status,
        )
        return True


def _is_access(record: logging.LogRecord) -> bool:
    return (
        record.name == "uvicorn.access"
        and record.msg == _ACCESS_FORMAT
        and isinstance(record.args, tuple)
        and len(record.args) == 5
        and all(isinstance(arg, str) for arg in record.args[1:4])
        and not record.exc_info
    )


def _is_listening(record: logging.LogRecord) -> bool:
    """uvicorn's own "Uvicorn running on http://HOST:PORT" line (operator config only)."""
    return (
        record.name == "uvicorn.error"
        and isinstance(record.msg, str)
        and record.msg.startswith(_LISTENING)
        and not record.exc_info
    )


def _mask_client(client: str, redact: Redact) -> str:
    host, sep, port = client.rpartition(":")
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return redact(client)
    return f"[IP_ADDRESS]{sep}{port}" if port.isdigit() else redact(client)


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
