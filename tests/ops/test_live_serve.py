"""Attacks and operations against a real `coatcheck serve` (uvicorn on loopback).

- the listen address in the log is the real one (the filter used to print `[IP_ADDRESS]`);
- `%0D%0A` in a URL forged a log line and `%1B[` reached the terminal (the access filter
  percent-decodes paths before redacting them): control characters are now escaped;
- an 8 MB request head was read whole before authentication: now 431 past 16 KiB;
- with `--log-format json --workers 2`: every line is a JSON object, a request's lines
  carry its request id, and `/metrics` on any worker adds up both workers.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from coatcheck.middleware.cli.headcap import MAX_HEAD_BYTES
from tests.ops.live import Live, serve


@pytest.fixture(scope="module")
def text_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with serve(tmp_path_factory.mktemp("ops-text"), "--log-level", "info") as live:
        yield live


@pytest.fixture(scope="module")
def json_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("ops-json")
    with serve(tmp, "--log-format", "json", "--workers", "2", "--log-level", "info") as live:
        yield live


def test_the_listen_address_is_logged_as_it_is(text_server: Live) -> None:
    assert f"Uvicorn running on http://127.0.0.1:{text_server.port}" in text_server.text()


def test_a_url_cannot_forge_log_lines_or_drive_the_terminal(text_server: Live) -> None:
    marker = uuid.uuid4().hex[:8]
    path = f"/v1/conversations/x{marker}%0D%0AINFO:%20%20%20%20%20forged{marker}%1B%5B31m/history"
    assert httpx.get(text_server.url + path, timeout=10).status_code == 401
    httpx.get(f"{text_server.url}/health?q={marker}%0Aforged{marker}", timeout=10)
    log = text_server.text()
    lines = [line for line in log.splitlines() if marker in line]
    assert len(lines) == 2, lines  # one access line each, nothing split off
    assert not [line for line in log.splitlines() if line.startswith(f"forged{marker}")]
    assert not [line for line in log.splitlines() if line.startswith("INFO:     forged")]
    assert "\x1b[31m" not in log and "\r" not in log
    assert "\\x0d\\x0aINFO:" in lines[0] and "\\x1b[31m" in lines[0]


def _raw(port: int, head: bytes) -> tuple[str, bool]:
    """Send `head` on a fresh connection; the status line (or "") and whether all was sent."""
    sent_all = True
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        try:
            for start in range(0, len(head), 65536):
                sock.sendall(head[start : start + 65536])
        except (BrokenPipeError, ConnectionResetError):
            sent_all = False
        try:
            answer = sock.recv(4096)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    return answer.split(b"\r\n", 1)[0].decode("latin-1"), sent_all


def test_a_huge_request_head_is_refused_before_authentication(text_server: Live) -> None:
    port = text_server.port
    request = b"POST /v1/redact HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
    ok_head = request + b"X-Pad: " + b"a" * 8192 + b"\r\n\r\n{}"
    assert _raw(port, ok_head)[0] == "HTTP/1.1 401 Unauthorized"  # 8 KiB: fine
    big = request + b"X-Pad: " + b"a" * (4 * MAX_HEAD_BYTES) + b"\r\n\r\n{}"
    assert _raw(port, big)[0] == "HTTP/1.1 431 Request Header Fields Too Large"
    many = request + b"".join(b"X-%d: %s\r\n" % (i, b"b" * 64) for i in range(1000)) + b"\r\n{}"
    assert _raw(port, many)[0] == "HTTP/1.1 431 Request Header Fields Too Large"
    huge = request + b"X-Pad: " + b"a" * (8 * 1024 * 1024) + b"\r\n\r\n{}"
    status, sent_all = _raw(port, huge)
    assert status.startswith("HTTP/1.1 431") or not sent_all, status  # cut off, not read whole
    assert status != "HTTP/1.1 401 Unauthorized"
    assert "request head larger than 16384 bytes: refused (431)" in text_server.text()
    assert httpx.get(f"{text_server.url}/health", timeout=10).status_code == 200


def _json_lines(live: Live) -> list[dict[str, object]]:
    entries = []
    for line in live.text().splitlines():
        if line.startswith("first run: "):  # the CLI's own note, before logging starts
            continue
        entries.append(json.loads(line))  # every other line is one JSON object
    return entries


def test_json_logs_carry_request_ids(json_server: Live) -> None:
    rid = str(uuid.uuid4())
    headers = {"Authorization": f"Bearer {json_server.keys['channel']}", "X-Request-ID": rid}
    body = {"sender": "json-logs", "message": "write to canary.jsonlog@example.com"}
    reply = httpx.post(f"{json_server.url}/webhooks/rest/webhook", json=body, headers=headers)
    assert reply.status_code == 200 and reply.headers["x-request-id"] == rid
    entries = _json_lines(json_server)
    mine = [e for e in entries if e.get("request_id") == rid]
    assert [e["path"] for e in mine if e["logger"] == "uvicorn.access"] == [
        "/webhooks/rest/webhook"
    ]
    assert any("Uvicorn running on" in str(e["message"]) for e in entries)
    assert "canary.jsonlog" not in json_server.text()


def _messages(live: Live) -> float:
    headers = {"Authorization": f"Bearer {live.keys['monitor']}"}
    with httpx.Client(timeout=10) as client:  # a new connection: any worker may answer
        text = client.get(f"{live.url}/metrics", headers=headers).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            forwarded = sample.labels == {"outcome": "forwarded"}
            if sample.name == "coatcheck_messages_total" and forwarded:
                return sample.value
    return 0.0


def _pids(live: Live, logger: str, needle: str) -> set[object]:
    return {
        e["pid"]
        for e in _json_lines(live)
        if e["logger"] == logger and needle in str(e.get("path", e["message"]))
    }


def test_metrics_add_up_every_worker(json_server: Live) -> None:
    deadline = time.monotonic() + 60
    while len(_pids(json_server, "uvicorn.error", "Application startup complete")) < 2:
        assert time.monotonic() < deadline, "the second worker did not start"
        time.sleep(0.2)
    before = _messages(json_server)
    headers = {"Authorization": f"Bearer {json_server.keys['channel']}"}
    marker = uuid.uuid4().hex[:8]
    sent = 0
    # new connections until both workers have taken messages (the kernel picks the worker)
    while len(_pids(json_server, "uvicorn.access", "/webhooks/rest/webhook")) < 2 or sent < 8:
        assert sent < 200, "one worker took every connection"
        with httpx.Client(headers=headers, timeout=30) as client:
            body = {"sender": f"metrics-{marker}-{sent}", "message": "hello"}
            response = client.post(f"{json_server.url}/webhooks/rest/webhook", json=body)
            assert response.status_code == 200
        sent += 1
    assert [_messages(json_server) - before for _ in range(4)] == [float(sent)] * 4
