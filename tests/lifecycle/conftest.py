"""Lifecycle fixtures: the gateway fixtures of tests/service, on SQLite and PostgreSQL.

`life` is a real app (TestClient runs its lifespan, the stub bot is a real HTTP server) on
the `db_url` database of tests/conftest.py (a tmp SQLite file, or a fresh PostgreSQL
schema), with the retention config below, an injected clock and the background sweeper
off: tests call `sweep_once` themselves, with the clock where they want it.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

_SERVICE = Path(__file__).resolve().parent.parent / "service"
if str(_SERVICE) not in sys.path:
    sys.path.insert(0, str(_SERVICE))

from gateway_helpers import Service, StubBot  # noqa: E402
from lifecycle_helpers import IDLE, LIFECYCLE_CONFIG  # noqa: E402

_spec = importlib.util.spec_from_file_location("service_fixtures", _SERVICE / "conftest.py")
assert _spec is not None and _spec.loader is not None
_service_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_service_fixtures)
stub_bot = _service_fixtures.stub_bot
service_factory = _service_fixtures.service_factory


@pytest.fixture
def life_factory(
    service_factory: Callable[..., Service], stub_bot: StubBot, db_url: str, tmp_path: Path
) -> Callable[..., Service]:
    """Build an app on the shared `db_url` (call twice for two workers on one database)."""
    config = tmp_path / "lifecycle.yml"
    config.write_text(yaml.safe_dump(LIFECYCLE_CONFIG), encoding="utf-8")

    def build(**overrides: Any) -> Service:
        values: dict[str, Any] = {
            "bot_url": stub_bot.url,
            "database_url": db_url,
            "config": config,
            "idle_timeout_seconds": IDLE,
            "sweep_interval_seconds": 0,
        }
        values.update(overrides)
        return service_factory(**values)

    return build


@pytest.fixture
def life(life_factory: Callable[..., Service]) -> Service:
    return life_factory()
