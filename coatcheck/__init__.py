"""coatcheck: a PII vault middleware for chatbots.

The one import package.  Its parts keep the repository's top-level folders and follow the
data flow: `coatcheck.middleware` (detect, render, the service), `coatcheck.vault` (keys,
envelope encryption, storage, audit) and `coatcheck.actions` (the rasa-sdk side).
`coatcheck.migrations` holds the alembic scripts, shipped as package data.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("coatcheck")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
