"""Fixtures for the reliability tests (real app, real stub bot on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rel_support import App, RecordingBot, running_app, running_bot


@pytest.fixture
def bot() -> Iterator[RecordingBot]:
    with running_bot() as b:
        yield b


@pytest.fixture
def app(tmp_path: Path, bot: RecordingBot) -> Iterator[App]:
    with running_app(tmp_path, bot.url) as a:
        yield a
