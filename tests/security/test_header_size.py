"""Finding 8: a request head of any size went through to the app before authentication.

uvicorn's httptools protocol bounds nothing: an 8 MB header reached the app (to be refused
there with 401, after it was all read and parsed).  Against a running `coatcheck serve`
over a raw socket: an 8 MB header, many small headers adding up, and a long request line
are each answered 431 before any authentication and the connection is closed, well before
the client finished sending; the worker keeps serving (/health).  "No match" rows: heads
under the cap (16 KiB) get the route's own answer (401 without a key).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.security.served import Live, serve

MB = 1024 * 1024
ROUTE = "/v1/conversations/u1/history"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp: Path = tmp_path_factory.mktemp("heads")
    with serve(tmp) as server:
        yield server


def _exchange(live: Live, head: bytes) -> tuple[bytes, int]:
    """Send `head` (as far as the server lets us); its answer and how many bytes went."""
    port = int(live.url.rsplit(":", 1)[1])
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            for start in range(0, len(head), 64 * 1024):
                sock.sendall(head[start : start + 64 * 1024])
                sent += min(64 * 1024, len(head) - start)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection: what we want
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    return answer, sent


def _big_header(size: int) -> bytes:
    return f"GET {ROUTE} HTTP/1.1\r\nHost: x\r\nX-Pad: {'a' * size}\r\n\r\n".encode("ascii")


def _many_headers(count: int) -> bytes:
    lines = "".join(f"X-H{n}: {'b' * 100}\r\n" for n in range(count))
    return f"GET {ROUTE} HTTP/1.1\r\nHost: x\r\n{lines}\r\n".encode("ascii")


def _long_line(size: int) -> bytes:
    return f"GET {ROUTE}?q={'c' * size} HTTP/1.1\r\nHost: x\r\n\r\n".encode("ascii")


OVERSIZED = [
    ("8MB-header", _big_header(8 * MB)),
    ("many-headers", _many_headers(2_000)),
    ("long-request-line", _long_line(8 * MB)),
]
UNDER = [
    ("small", _big_header(100)),
    ("12KiB-header", _big_header(12 * 1024)),
]


@pytest.mark.parametrize("head", [o[1] for o in OVERSIZED], ids=[o[0] for o in OVERSIZED])
def test_an_oversized_head_is_refused_before_auth(live: Live, head: bytes) -> None:
    started = time.monotonic()
    answer, sent = _exchange(live, head)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:80]
    assert b"unauthorized" not in answer  # refused before authentication ran
    if len(head) >= 8 * MB:
        assert sent < len(head)  # the server stopped reading (buffers hold a few MB at most)
    assert time.monotonic() - started < 20
    assert httpx.get(f"{live.url}/health", timeout=5).status_code == 200


@pytest.mark.parametrize("head", [u[1] for u in UNDER], ids=[u[0] for u in UNDER])
def test_a_head_under_the_cap_reaches_the_route(live: Live, head: bytes) -> None:
    answer, _ = _exchange(
        live, head.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\nConnection: close\r\n", 1)
    )
    assert answer.startswith(b"HTTP/1.1 401"), answer[:80]
