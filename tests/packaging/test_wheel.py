"""The wheel installs one top-level package, `coatcheck`, and carries what runs from it.

Built from a copy of the package's folders (`pip wheel`, no dependencies), or taken from
`COATCHECK_TEST_WHEEL` when .ci/run has built it already.  A stray top-level name (a
`middleware` or `tests` beside `coatcheck`) would shadow or be shadowed by other
distributions in the same environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("coatcheck", "middleware", "vault", "actions", "alembic")


def _setuptools_ok() -> bool:
    major = int(version("setuptools").split(".")[0])
    return major >= 77  # pyproject's build requirement


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("COATCHECK_TEST_WHEEL")
    if given:
        return Path(given)
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=skip)
    # without build isolation when this environment can build it (fast, offline)
    flags = ["--no-build-isolation"] if _setuptools_ok() else []
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", *flags, "-w", str(tmp), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [built] = tmp.glob("coatcheck-*.whl")
    return built


def test_one_top_level_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    tops = {name.split("/", 1)[0] for name in names}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert len(dist_info) == 1
    assert tops - dist_info == {"coatcheck"}, sorted(tops)
    top_level = next((n for n in names if n.endswith(".dist-info/top_level.txt")), None)
    if top_level is not None:
        with zipfile.ZipFile(wheel) as archive:
            assert archive.read(top_level).decode().split() == ["coatcheck"]


def test_the_wheel_carries_migrations_templates_and_the_entry_point(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = archive.read(entry).decode()
    migrations = {Path(p).name for p in (ROOT / "alembic" / "versions").glob("*.py")}
    for name in migrations:
        assert f"coatcheck/migrations/versions/{name}" in names, name
    for needed in (
        "coatcheck/py.typed",
        "coatcheck/migrations/env.py",
        "coatcheck/migrations/script.py.mako",
        "coatcheck/middleware/ui/templates/base.html",
        "coatcheck/middleware/ui/static/reveal.js",
        "coatcheck/middleware/cli/headcap.py",
        "coatcheck/middleware/observability/metrics.py",
    ):
        assert needed in names, needed
    assert not [n for n in names if n.startswith(("tests/", "bench/", "e2e/", "reliability/"))]
    assert "coatcheck = coatcheck.middleware.cli:main" in entry_points
