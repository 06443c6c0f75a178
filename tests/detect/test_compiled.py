"""Which build of the detector runs: compiled by mypyc in a wheel (setup.py), Python in an
editable install. CI sets COATCHECK_EXPECT_COMPILED=1 where it runs the detector's tests
against the installed wheel, so both directions are checked: a wheel that lost its
compiled modules fails there, an editable install that picked up extension modules (which
would shadow later edits of the sources) fails everywhere else."""

from __future__ import annotations

import ast
import importlib
import os
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from coatcheck.middleware.detect import compiled


def _hot_modules() -> tuple[str, ...]:
    """setup.py's HOT_MODULES (read, not imported: importing it would run the build)."""
    tree = ast.parse((Path(__file__).resolve().parents[2] / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "HOT_MODULES":
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("setup.py has no HOT_MODULES")


def _is_extension(name: str) -> bool:
    module = importlib.import_module(f"coatcheck.middleware.detect.{name}")
    return (module.__file__ or "").endswith(tuple(EXTENSION_SUFFIXES))


def test_the_build_expected_here_runs() -> None:
    assert compiled() is (os.environ.get("COATCHECK_EXPECT_COMPILED") == "1")


def test_all_hot_modules_or_none_are_compiled() -> None:
    assert {_is_extension(name) for name in _hot_modules()} == {compiled()}
