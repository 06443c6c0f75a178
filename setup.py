"""Build hook: the detector's hot modules compiled to C with mypyc, where that can be done.

Why: detection runs on every message, and what it costs is CPython's steps around ~10 regex
calls a message; compiled by mypyc (the compiler mypy and black ship with) the same code
runs ~1.4x faster (docs/performance.md, "Eight locales, fifth round"). Everything else in
pyproject.toml; this file only adds the extension modules.

- The .py sources always ship too: a build that cannot compile (no C compiler,
  `COATCHECK_PURE_PYTHON=1`) gives a pure-Python wheel that behaves the same, slower.
- Editable installs (`pip install -e .`) are never compiled: an extension module next to
  its source would shadow every later edit of that source.
- mypyc type-checks what it compiles; the build environment holds none of the project's
  dependencies, so it runs without the project's mypy config and with missing imports as
  `Any` (the strict check is CI's `mypy`, with every dependency installed).
- `coatcheck.middleware.detect.compiled()` says which build runs.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

# The modules that run for every message (middleware/detect/; config, locales, catalogue,
# NER and the presidio plug-in run at start-up or optionally and stay Python).
HOT_MODULES = (
    "address",
    "cards",
    "credentials",
    "detector",
    "names",
    "normalise",
    "numbering",
    "phone",
    "prune",
    "recognizers",
    "resolve",
    "scan",
    "spans",
    "validators",
)
# The shared library lands inside the package (one top-level name installed, `coatcheck`).
GROUP = "coatcheck.middleware.detect._native"
# setuptools' commands (PEP 517 runs setup.py with one of them as argv[1]).
_BUILDS = frozenset({"bdist_wheel", "build", "build_ext", "install"})
_EDITABLE = frozenset({"editable_wheel", "develop"})


class OptionalBuildExt(build_ext):
    """Compiles the extensions, or none of them: a failed build (no compiler, no headers)
    removes what it built and leaves the pure-Python package."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any compiler failure: fall back whole
            for ext in self.extensions:
                path = self.get_ext_fullpath(ext.name)
                if os.path.exists(path):
                    os.remove(path)
            print(f"coatcheck: detector not compiled ({exc}); pure Python", file=sys.stderr)


def _extensions() -> list[object]:
    # only for a build: not for metadata (`egg_info`, `dist_info`: mypyc's generation
    # alone takes a minute), never for an editable install
    skip = not _EDITABLE.isdisjoint(sys.argv) or _BUILDS.isdisjoint(sys.argv)
    if os.environ.get("COATCHECK_PURE_PYTHON") or skip:
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        return []
    paths = [f"coatcheck/middleware/detect/{name}.py" for name in HOT_MODULES]
    options = ["--config-file=", "--ignore-missing-imports", "--follow-imports=silent"]
    try:
        return list(mypycify([*options, *paths], group_name=GROUP, opt_level="3"))
    except (Exception, SystemExit) as exc:  # mypyc refused the code: fall back whole
        print(f"coatcheck: detector not compiled ({exc}); pure Python", file=sys.stderr)
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
