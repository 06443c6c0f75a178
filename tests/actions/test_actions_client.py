"""Client configuration and transport errors (no service needed: a closed loopback port)."""

import socket

import pytest

from coatcheck.actions import (
    CoatcheckActionError,
    CoatcheckClient,
    ConfigurationError,
    ServiceUnavailable,
)


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({}, "COATCHECK_URL"),
        ({"COATCHECK_URL": "http://127.0.0.1:1"}, "COATCHECK_ACTION_KEY"),
        ({"COATCHECK_ACTION_KEY": "cck_x"}, "COATCHECK_URL"),
        (
            {
                "COATCHECK_URL": "http://127.0.0.1:1",
                "COATCHECK_ACTION_KEY": "k",
                "COATCHECK_TIMEOUT": "soon",
            },
            "COATCHECK_TIMEOUT",
        ),
    ],
)
def test_from_env_names_the_missing_setting(environ: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        CoatcheckClient.from_env(environ)
    assert info.value.name == name
    assert name in str(info.value)


def test_from_env_ok() -> None:
    client = CoatcheckClient.from_env(
        {"COATCHECK_URL": "http://127.0.0.1:9/", "COATCHECK_ACTION_KEY": "cck_secret"}
    )
    assert "cck_secret" not in repr(client)
    assert repr(client) == "CoatcheckClient(http://127.0.0.1:9)"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.anyio
async def test_unreachable_service_is_a_clear_error_without_the_value() -> None:
    secret = "alice.smith@example.com"
    async with CoatcheckClient(f"http://127.0.0.1:{_closed_port()}", "k", timeout=2) as client:
        with pytest.raises(ServiceUnavailable) as info:
            await client.redact("conv-1", f"write to {secret}")
    assert isinstance(info.value, CoatcheckActionError)
    assert info.value.name == "redact"
    assert secret not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
