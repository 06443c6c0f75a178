"""Start-up objects are frozen out of the cyclic collector while the app runs
(`create_app`'s lifespan; docs/performance.md, "Collector")."""

from __future__ import annotations

import gc
from pathlib import Path

from tests.harness import open_gateway
from tests.service.gateway_helpers import make_settings


def test_start_up_objects_are_frozen_while_serving_and_released_at_stop(tmp_path: Path) -> None:
    client, _, _ = open_gateway(make_settings(tmp_path))
    try:
        frozen = gc.get_freeze_count()
        assert client.get("/health").status_code == 200
    finally:
        client.__exit__(None, None, None)
    assert frozen > 10_000  # the detector's tables alone are more
    assert gc.get_freeze_count() == 0  # an embedding process collects them again
