"""Errors of the export package; they name a sink or reason, never a record's content."""

from __future__ import annotations

__all__ = ["ExportError", "ExportSinkError"]


class ExportError(Exception):
    """Root of the export package's errors; the message never holds record content."""

    default_message = "export error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)


class ExportSinkError(ExportError):
    """A sink failed to deliver a record; names the sink and a short reason."""

    def __init__(self, sink: str, reason: str, message: str | None = None) -> None:
        self.sink = sink
        self.reason = reason
        super().__init__(message or f"{sink}: delivery failed ({reason})")
