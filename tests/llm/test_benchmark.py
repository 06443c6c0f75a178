"""The external benchmark (`pii-leak-benchmark`, PyPI) against the core on loopback.

The core is hosted by tests/llm/core_server.py (no service route yet) with the real
detector alone: its SECRET types, the separated 9xx-area SSN and the North American phone
shapes (the 555-01xx lines included) cover what the benchmark plants without context words.
The negative control shows the capture sees traffic, so a CLEAN is not blind.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import threaded
from tests.llm.core_server import build_app

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONFORMANCE_TARGET_API_KEY": "unused"}
    return subprocess.run(args, capture_output=True, text=True, timeout=600, env=env, check=False)


@pytest.mark.parametrize("profile", ["pii-v1", "pii-secrets-v1"])
def test_selfcheck_is_clean(profile: str) -> None:
    capture = _free_port()
    with threaded(build_app(f"http://127.0.0.1:{capture}/v1")) as base:
        done = _run(
            str(BIN / "pii-leak-benchmark"),
            "selfcheck",
            "--target-base-url",
            f"{base}/v1",
            "--capture-port",
            str(capture),
            "--profile",
            profile,
            "--iterations",
            "2",
        )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "CLEAN" in done.stdout


def test_negative_control_leaks() -> None:
    done = _run(
        str(BIN / "pii-leak-benchmark"),
        "selfcheck",
        "--target-base-url",
        "capture://self",
        "--capture-port",
        str(_free_port()),
        "--profile",
        "pii-v1",
        "--iterations",
        "1",
    )
    assert done.returncode == 1 and "LEAK" in done.stdout


@pytest.mark.slow
def test_v2_response_split_profile_passes(tmp_path: Path) -> None:
    capture = _free_port()
    summary = tmp_path / "summary.json"
    with threaded(build_app(f"http://127.0.0.1:{capture}/v1")) as base:
        done = _run(
            str(BIN / "pii-leak-benchmark-v2"),
            "--out",
            str(tmp_path),
            "--only",
            "coatcheck",
            "--gateway-url",
            f"{base}/v1/chat/completions",
            "--upstream-port",
            str(capture),
            "--json-out",
            str(summary),
        )
    assert done.returncode == 0, done.stdout[-3000:]
    [row] = json.loads(summary.read_text())["rows"]
    assert row["fidelity_rate"] == 1.0
    assert row["leak_single_chunk"] == 0.0 and row["leak_adversarial"] == 0.0
    assert row["request_path_leak"] == [] and row["outcome"] == "pass"
