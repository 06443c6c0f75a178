"""EndpointConfig validation: clear errors naming the field; secrets never in reprs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from coatcheck.middleware.external import EndpointConfig

BASE = {"name": "cust", "url_template": "https://vault.example/v/{ref}"}

GOOD: list[dict[str, Any]] = [
    BASE,
    {**BASE, "auth": {"type": "bearer", "token": "t"}},
    {
        **BASE,
        "method": "POST",
        "url_template": "https://v.example/q",
        "body_template": {"id": "{ref}"},
    },
    {**BASE, "method": "POST", "url_template": "https://v.example/q/{ref}"},
    {**BASE, "value_path": "data.value", "retry": {"attempts": 1}},
]

BAD: list[tuple[dict[str, Any], str]] = [
    ({**BASE, "url_template": "https://vault.example/v"}, "url_template"),
    ({**BASE, "url_template": "not a url/{ref}"}, "URL"),
    ({**BASE, "body_template": {"id": "{ref}"}}, "only allowed with method POST"),
    ({**BASE, "method": "POST", "url_template": "https://v.example/q"}, "body_template"),
    (
        {**BASE, "method": "POST", "url_template": "https://v.example/q", "body_template": {}},
        "body_template",
    ),
    ({**BASE, "value_path": "data[0]"}, "value_path"),
    ({**BASE, "method": "DELETE"}, "method"),
    ({**BASE, "auth": {"type": "digest"}}, "auth"),
    ({**BASE, "auth": {"type": "basic", "username": "u"}}, "auth.basic.password"),
    ({**BASE, "auth": {"type": "api_key", "name": "a b", "value": "v"}}, "auth.api_key.name"),
    ({**BASE, "retry": {"attempts": 0}}, "retry.attempts"),
    ({**BASE, "breaker": {"cooldown_seconds": 0}}, "breaker.cooldown_seconds"),
    ({**BASE, "timeout_seconds": -1}, "timeout_seconds"),
    ({**BASE, "name": ""}, "name"),
    ({**BASE, "surprise": 1}, "surprise"),
]


@pytest.mark.parametrize("data", GOOD)
def test_good_configs_load(data: dict[str, Any]) -> None:
    assert EndpointConfig.model_validate(data).name == "cust"


@pytest.mark.parametrize(("data", "needle"), BAD)
def test_bad_configs_name_the_field(data: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        EndpointConfig.model_validate(data)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "basic", "username": "u", "password": "hunter2-secret"},
        {"type": "bearer", "token": "hunter2-secret"},
        {"type": "api_key", "name": "k", "value": "hunter2-secret"},
        {
            "type": "oauth2_client_credentials",
            "token_url": "https://idp.example/token",
            "client_id": "c",
            "client_secret": "hunter2-secret",
        },
    ],
)
def test_credentials_never_in_repr(auth: dict[str, Any]) -> None:
    cfg = EndpointConfig.model_validate({**BASE, "auth": auth})
    assert "hunter2-secret" not in repr(cfg)
    assert "hunter2-secret" not in str(cfg.model_dump())
