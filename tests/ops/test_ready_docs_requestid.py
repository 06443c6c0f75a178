"""`/ready` (database and bot), request ids, the JSON log lines, and offline API docs."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from coatcheck.middleware.observability.jsonlog import JsonFormatter
from coatcheck.middleware.observability.requestid import REQUEST_ID
from coatcheck.middleware.service.apikeys import Role
from tests.export.gateway_app import GatewayFactory
from tests.external.loopback import closed_port
from tests.harness import serving

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


async def rasa_like(request: web.Request) -> web.Response:
    return web.json_response([])


@pytest.fixture
def bot_url() -> Iterator[str]:
    with serving("/webhooks/rest/webhook", rasa_like) as url:
        yield url


def test_ready_checks_database_and_bot(gateways: GatewayFactory, bot_url: str) -> None:
    up = gateways.build({}, bot_url=bot_url).call("GET", "/ready", None)
    assert up.status_code == 200  # a GET on a POST-only webhook (405) is a live bot
    assert up.json() == {"status": "ready", "checks": {"database": "ok", "bot": "ok"}}
    gw = gateways.build({}, bot_url=f"http://127.0.0.1:{closed_port()}/webhooks/rest/webhook")
    down = gw.call("GET", "/ready", None)
    assert down.status_code == 503
    assert down.json() == {
        "error": "not_ready",
        "message": "bot: unreachable",
        "checks": {"database": "ok", "bot": "unreachable"},
    }
    assert gw.call("GET", "/health", None).status_code == 200  # liveness: the process is fine


def test_request_id_is_sent_back_and_only_a_uuid_is_taken(gateways: GatewayFactory) -> None:
    gw = gateways.build({})
    fresh = gw.call("GET", "/health", None)
    assert UUID.fullmatch(fresh.headers["x-request-id"])
    theirs = "0b7c4a52-8a55-4e8c-9a5e-0d6e2f1a9b33"
    kept = gw.client.get("/health", headers={"X-Request-ID": theirs.upper()})
    assert kept.headers["x-request-id"] == theirs
    pii = gw.client.get("/health", headers={"X-Request-ID": "jane.doe@example.com"})
    assert UUID.fullmatch(pii.headers["x-request-id"])  # replaced, never logged
    refused = gw.call("POST", "/webhooks/rest/webhook", None, json={"sender": "u", "message": "x"})
    assert refused.status_code == 401 and UUID.fullmatch(refused.headers["x-request-id"])


def _record(name: str, msg: str, args: Any) -> logging.LogRecord:
    return logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)


def test_json_lines_carry_the_request_id_and_stay_one_line() -> None:
    formatter = JsonFormatter()
    token = REQUEST_ID.set("0b7c4a52-8a55-4e8c-9a5e-0d6e2f1a9b33")
    try:
        access = _record(
            "uvicorn.access",
            '%s - "%s %s HTTP/%s" %d',
            ("[IP_ADDRESS]:5555", "GET", "/v1/x\r\nforged\x1b[31m", "1.1", 404),
        )
        line = formatter.format(access)
    finally:
        REQUEST_ID.reset(token)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    entry = json.loads(line)
    assert entry["request_id"] == "0b7c4a52-8a55-4e8c-9a5e-0d6e2f1a9b33"
    assert (entry["method"], entry["status"], entry["logger"]) == ("GET", 404, "uvicorn.access")
    assert entry["path"] == "/v1/x\r\nforged\x1b[31m"  # kept, but inside its string
    outside = json.loads(formatter.format(_record("coatcheck", "started %s", ("ok",))))
    assert outside["message"] == "started ok" and "request_id" not in outside


def test_docs_need_no_cdn_and_the_document_declares_bearer(gateways: GatewayFactory) -> None:
    gw = gateways.build({})
    for page in ("/docs", "/redoc"):
        html = gw.call("GET", page, None).text
        assert "cdn." not in html and "https://" not in html.replace("https://fastapi", "")
        for asset in re.findall(r'(?:src|href)="(/static-offline-docs/[^"]+)"', html):
            assert gw.call("GET", asset, None).status_code == 200, asset
    assert "/static-offline-docs/swagger-ui-bundle.js" in gw.call("GET", "/docs", None).text
    schema = gw.call("GET", "/openapi.json", None).json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert schema["paths"]["/v1/redact"]["post"]["security"] == [{"bearer": []}]
    assert schema["paths"]["/metrics"]["get"]["security"] == [{"bearer": []}]
    assert schema["paths"]["/health"]["get"]["security"] == []
    assert schema["paths"]["/ready"]["get"]["security"] == []


def test_monitor_key_sees_metrics(gateways: GatewayFactory) -> None:
    gw = gateways.build({})
    assert "coatcheck_http_requests_total" in gw.call("GET", "/metrics", Role.MONITOR).text
