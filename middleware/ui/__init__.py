"""The log viewer: a server-rendered web UI under `/ui/` for redacted history and audit."""

from coatcheck.middleware.ui.views import router

__all__ = ["router"]
