"""The customer-endpoint connection test: each step that can fail is named, no value shown.

Against the loopback customer vault (tests/external/customer_vault.py), a TLS server with a
certificate no one trusts, a closed port; then the same probe through the CLI
(`coatcheck external test TYPE`) and the admin route of a running gateway.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from coatcheck.middleware.external import EndpointConfig
from coatcheck.middleware.external.probe import ProbeResult, probe
from coatcheck.middleware.service.apikeys import Role
from tests.export.gateway_app import GatewayFactory
from tests.external.customer_vault import (
    BEARER,
    CLIENT_ID,
    CLIENT_SECRET,
    VALUES,
    VaultState,
)
from tests.external.customer_vault import build_app as customer_app
from tests.external.loopback import closed_port, threaded

ROOT = Path(__file__).resolve().parents[2]
SECRETS = (BEARER, CLIENT_SECRET, *VALUES.values())


def endpoint(url_template: str, **extra: Any) -> EndpointConfig:
    spec = {"name": "crm", "url_template": url_template, "timeout_seconds": 0.5, **extra}
    return EndpointConfig.model_validate(spec)


def oauth(base: str, secret: str = CLIENT_SECRET) -> dict[str, Any]:
    return {
        "type": "oauth2_client_credentials",
        "token_url": base + "/token",
        "client_id": CLIENT_ID,
        "client_secret": secret,
    }


async def run_probe(config: EndpointConfig) -> ProbeResult:
    async with aiohttp.ClientSession() as session:
        return await probe("CUST_REF", config, session)


def self_signed(tmp: Path) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 that no client trusts."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


@pytest.fixture
def customer() -> Iterator[str]:
    with threaded(customer_app(VaultState())) as base:
        yield base


# (endpoint spec relative to the customer vault, ok, failing step)
CASES = [
    ({"url_template": "/none/{ref}"}, True, None),  # 404 for the probe reference: reachable
    ({"url_template": "/bearer/{ref}", "auth": {"type": "bearer", "token": BEARER}}, True, None),
    (
        {"url_template": "/bearer/{ref}", "auth": {"type": "bearer", "token": "wrong"}},
        False,
        "auth",
    ),
    ({"url_template": "/forbidden/{ref}"}, False, "auth"),
    ({"url_template": "/garbage/{ref}"}, False, "shape"),
    ({"url_template": "/shape/{ref}"}, False, "shape"),
    ({"url_template": "/redirect/{ref}"}, False, "shape"),
    ({"url_template": "/flaky/{ref}"}, False, "status"),
    ({"url_template": "/slow/{ref}"}, False, "timeout"),
]


@pytest.mark.parametrize(("spec", "ok", "step"), CASES, ids=lambda v: str(v)[:40])
def test_probe_names_the_failing_step(
    customer: str, spec: dict[str, Any], ok: bool, step: str | None
) -> None:
    config = endpoint(customer + spec.pop("url_template"), **spec)
    result = asyncio.run(run_probe(config))
    assert (result.ok, result.step) == (ok, step), result
    assert result.endpoint == "crm" and result.entity_type == "CUST_REF"
    text = json.dumps(result.as_dict()) + result.line()
    assert not [s for s in SECRETS if s in text]


def test_probe_shape_of_a_found_value_is_ok_and_the_value_is_not_shown(customer: str) -> None:
    """An endpoint that answers every reference (here: POST with a fixed id) passes shape."""
    spec = {
        "method": "POST",
        "body_template": {"query": {"id": "r1"}, "fields": ["value"], "opt": None, "p": "{ref}"},
        "value_path": "data.value",
    }
    result = asyncio.run(run_probe(endpoint(customer + "/lookup", **spec)))
    assert result.ok and result.step is None and "expected shape" in result.detail
    assert VALUES["r1"] not in result.line()


def test_probe_oauth2_fetches_a_token_then_calls(customer: str) -> None:
    good = asyncio.run(run_probe(endpoint(customer + "/oauth/{ref}", auth=oauth(customer))))
    assert good.ok, good
    bad = endpoint(customer + "/oauth/{ref}", auth=oauth(customer, "wrong-secret"))
    refused = asyncio.run(run_probe(bad))
    assert (refused.ok, refused.step) == (False, "token")
    assert "HTTP 401" in refused.detail and "wrong-secret" not in refused.line()
    down = endpoint(customer + "/oauth/{ref}", auth=oauth(f"http://127.0.0.1:{closed_port()}"))
    result = asyncio.run(run_probe(down))
    assert (result.step, result.detail) == (
        "token",
        "token endpoint: no connection (refused, unknown host or reset)",
    )


def test_probe_connect_and_tls(tmp_path: Path) -> None:
    closed = asyncio.run(run_probe(endpoint(f"http://127.0.0.1:{closed_port()}/v/{{ref}}")))
    assert (closed.ok, closed.step) == (False, "connect")

    async def against_untrusted_tls() -> ProbeResult:
        async def unknown(request: web.Request) -> web.Response:
            return web.json_response({}, status=404)

        app = web.Application()
        app.router.add_get("/v/{ref}", unknown)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self_signed(tmp_path))
        await site.start()
        try:
            port = runner.addresses[0][1]
            return await run_probe(endpoint(f"https://127.0.0.1:{port}/v/{{ref}}"))
        finally:
            await runner.cleanup()

    tls = asyncio.run(against_untrusted_tls())
    assert (tls.ok, tls.step) == (False, "tls"), tls


def _yaml(tmp_path: Path, base: str, token: str) -> Path:
    path = tmp_path / "external.yml"
    spec = {
        "name": "crm",
        "url_template": base + "/bearer/{ref}",
        "timeout_seconds": 0.5,
        "auth": {"type": "bearer", "token": token},
    }
    data = {
        "custom_types": [{"name": "CUST_REF", "regex": r"\bCUST-[A-Z0-9]{6}\b"}],
        "external": {"CUST_REF": spec},
    }
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(("token", "code", "expect"), [(BEARER, 0, "ok"), ("nope", 1, "auth")])
def test_cli_external_test(
    customer: str, tmp_path: Path, token: str, code: int, expect: str
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COATCHECK_CONFIG": str(_yaml(tmp_path, customer, token)),
    }
    argv = [sys.executable, "-c", "from coatcheck.middleware.cli import main; main()"]
    done = subprocess.run(
        [*argv, "external", "test", "CUST_REF", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == code, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is (code == 0) and (result["step"] or "ok") == expect
    unknown = subprocess.run(
        [*argv, "external", "test", "NOPE"], env=env, capture_output=True, text=True, timeout=60
    )
    assert unknown.returncode == 2 and "NOPE: not under external:" in unknown.stderr
    assert BEARER not in done.stdout + done.stderr


def test_admin_route_probes_the_running_config(
    customer: str, tmp_path: Path, gateways: GatewayFactory
) -> None:
    data = yaml.safe_load(_yaml(tmp_path, customer, BEARER).read_text())
    gw = gateways.build(data)
    answer = gw.call("POST", "/v1/external/CUST_REF/test")
    assert answer.status_code == 200
    assert answer.json()["ok"] is True and answer.json()["endpoint"] == "crm"
    assert gw.call("POST", "/v1/external/CUST_REF/test", Role.AUDITOR).status_code == 403
    missing = gw.call("POST", "/v1/external/EMAIL_ADDRESS/test")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_external")
