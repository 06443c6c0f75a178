"""Finding 8: log injection through a URL.

uvicorn's access line holds the request path, which the log filter percent-decodes (so
`jane%40example.com` is redacted as an e-mail).  Decoded, `%0D%0A` would start a forged log
line, `%1B[` would drive the operator's terminal, U+2028 splits a line for any reader that
uses Unicode line breaks (Python's `splitlines`, JavaScript log viewers), and bidi controls
(U+202E) make a line read differently from what it holds.  Against a running `coatcheck
serve`, text and JSON log formats: every such character comes out escaped, one request
is one log line, and the forged text never starts a line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.security.served import Live, serve

FORGED = 'INFO:     127.0.0.1:1 - "GET /admin HTTP/1.1" 200 OK'
ATTACKS = [
    ("crlf", "/v1/conversations/x%0D%0A" + FORGED.replace(" ", "%20") + "/history"),
    ("lf", "/v1/conversations/x%0A" + FORGED.replace(" ", "%20") + "/history"),
    ("ansi", "/v1/conversations/%1B%5B2J%1B%5B31mred/history"),
    ("nel-c1", "/v1/conversations/x%C2%85" + FORGED.replace(" ", "%20") + "/history"),
    ("line-separator", "/v1/conversations/x%E2%80%A8" + FORGED.replace(" ", "%20") + "/history"),
    ("paragraph-sep", "/v1/conversations/x%E2%80%A9" + FORGED.replace(" ", "%20") + "/history"),
    ("bidi-override", "/v1/conversations/x%E2%80%AEtxt.exe/history"),
    ("query", "/health?x=%0D%0A" + FORGED.replace(" ", "%20")),
]
# Characters that must never appear raw in a log line (each one's escaped form is fine).
BREAKERS = "\r\n\x1b\x85\u2028\u2029\u202e"


@pytest.fixture(scope="module", params=["text", "json"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    tmp: Path = tmp_path_factory.mktemp(f"logs-{request.param}")
    with serve(tmp, env={"COATCHECK_LOG_FORMAT": request.param}) as server:
        yield server


def _send_raw(live: Live, path: str) -> int:
    """The path exactly as written (httpx would re-encode it)."""
    with httpx.Client(base_url=live.url) as client:
        request = client.build_request("GET", live.url)
        request.url = request.url.copy_with(raw_path=path.encode("ascii"))
        return client.send(request).status_code


def _lines_after(live: Live, before: int) -> list[str]:
    time.sleep(0.5)  # the access line is written after the response
    return live.log.read_bytes()[before:].decode("utf-8").split("\n")


@pytest.mark.parametrize("path", [a[1] for a in ATTACKS], ids=[a[0] for a in ATTACKS])
def test_a_url_cannot_forge_or_colour_log_lines(live: Live, path: str) -> None:
    before = live.log.stat().st_size
    status = _send_raw(live, path)
    assert status in (200, 401, 404)
    lines = [line for line in _lines_after(live, before) if line]
    assert len(lines) == 1, lines  # one request, one line
    [line] = lines
    if line.startswith("{"):
        line = json.loads(line)["message"]  # the JSON line's text, decoded
    assert not any(c in line for c in BREAKERS), repr(line)
    assert not line.startswith("INFO:     127.0.0.1:1")


def test_no_match_a_plain_path_is_logged_as_it_is(live: Live) -> None:
    before = live.log.stat().st_size
    assert _send_raw(live, "/health") == 200
    [line] = [line for line in _lines_after(live, before) if line]
    assert "/health" in line
