"""The external benchmark (`pii-leak-benchmark`, PyPI) against the real `coatcheck serve`.

The gateway runs as an operator runs it (the CLI, uvicorn, SQLite, the starter channel
key from the keys file) with `COATCHECK_LLM_UPSTREAM_URL=http://127.0.0.1:CAP/v1`, where
the benchmark binds its own capture upstream.  `selfcheck` must say CLEAN for both
profiles; the v2 harness must restore every value (fidelity 1.0), let no injected value
through (single-chunk and adversarial splits) and see no value upstream; the negative
control (no gateway) must say LEAK, so the run is not blind.  `.ci/run` runs this file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.llm.served import free_port
from tests.ops.live import CLI, env_for, wait_healthy

BIN = Path(sys.executable).parent


@dataclass
class Gateway:
    base: str  # http://127.0.0.1:PORT/openai/v1
    capture: int
    key: str


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("llm-bench")
    port, capture = free_port(), free_port()
    env = env_for(tmp, COATCHECK_LLM_UPSTREAM_URL=f"http://127.0.0.1:{capture}/v1")
    log = tmp / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [*CLI, "serve", "--port", str(port)], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(proc, url, log)
        keys = dict(line.split("=", 1) for line in (tmp / "ops.apikeys").read_text().split())
        yield Gateway(f"{url}/openai/v1", capture, keys["channel"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "@example.com" not in log.read_text(errors="replace")  # no value in the log


def _run(key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONFORMANCE_TARGET_API_KEY": key, "V2_GATEWAY_TOKEN": key}
    return subprocess.run(args, capture_output=True, text=True, timeout=900, env=env, check=False)


@pytest.mark.parametrize("profile", ["pii-v1", "pii-secrets-v1"])
def test_selfcheck_through_the_served_route_is_clean(gateway: Gateway, profile: str) -> None:
    done = _run(
        gateway.key,
        str(BIN / "pii-leak-benchmark"),
        "selfcheck",
        "--target-base-url",
        gateway.base,
        "--capture-port",
        str(gateway.capture),
        "--profile",
        profile,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "CLEAN" in done.stdout and "LEAK" not in done.stdout


def test_the_negative_control_leaks(gateway: Gateway) -> None:
    done = _run(
        gateway.key,
        str(BIN / "pii-leak-benchmark"),
        "selfcheck",
        "--target-base-url",
        "capture://self",
        "--capture-port",
        str(gateway.capture),
        "--profile",
        "pii-v1",
        "--iterations",
        "1",
    )
    assert done.returncode == 1 and "LEAK" in done.stdout, done.stdout[-2000:]


@pytest.mark.slow
def test_v2_through_the_served_route_passes(gateway: Gateway, tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    done = _run(
        gateway.key,
        str(BIN / "pii-leak-benchmark-v2"),
        "--out",
        str(tmp_path),
        "--only",
        "coatcheck",
        "--gateway-url",
        f"{gateway.base}/chat/completions",
        "--upstream-port",
        str(gateway.capture),
        "--json-out",
        str(summary),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    [row] = json.loads(summary.read_text())["rows"]
    assert row["fidelity_rate"] == 1.0, row
    assert row["leak_single_chunk"] == 0.0 and row["leak_adversarial"] == 0.0, row
    assert row["request_path_leak"] == [], row
    assert row["outcome"] != "fail" and row["outcome"] == "pass", row
