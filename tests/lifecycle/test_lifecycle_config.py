"""Retention and TTL config (YAML `types:`), and the lifecycle settings: errors name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from gateway_helpers import make_settings

from coatcheck.middleware.app import create_app
from coatcheck.middleware.config import ConfigError, config_from_data
from coatcheck.middleware.config_fields import parse_duration
from coatcheck.middleware.settings import load_settings
from coatcheck.vault import Policies, Retention


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45s", 45), ("15m", 900), ("12h", 43200), ("30d", 2592000), (" 2h ", 7200)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert config_from_data({"types": {"PIN": {"ttl": text}}}).policies().ttl_for("PIN") == seconds


@pytest.mark.parametrize("text", ["0d", "30", "1w", "-5m", "1.5h", "", 30, None, "3651d"])
def test_bad_durations_name_the_field(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
    if text is None:  # `ttl: null` in the file is no TTL at all
        assert config_from_data({"types": {"PIN": {"ttl": None}}}).policies().ttl_for("PIN") is None
        return
    with pytest.raises(ConfigError) as caught:
        config_from_data({"types": {"PIN": {"ttl": text}}})
    assert caught.value.name == "types.PIN.ttl"


def test_policies_from_yaml() -> None:
    policies = config_from_data(
        {
            "types": {
                "EMAIL_ADDRESS": {"retention": "mask", "ttl": "90d"},
                "PHONE_NUMBER": {"retention": {"retain": "30d"}},
                "CREDIT_CARD": {"retention": "shred"},
                "PIN": {"ttl": "5m", "capture": "whole"},
            },
            "custom_types": [
                {"name": "ACCOUNT_ID", "regex": "x", "retention": {"retain": "12h"}},
            ],
        }
    ).policies()
    assert policies.retention_for("EMAIL_ADDRESS") == Retention("mask")
    assert policies.retention_for("PHONE_NUMBER") == Retention("retain", 30 * 86400)
    assert policies.retention_for("ACCOUNT_ID") == Retention("retain", 12 * 3600)
    assert policies.retention_for("IBAN_CODE") == Retention("shred")  # privacy-first default
    assert policies.ttl_for("PIN") == 300 and policies.ttl_for("EMAIL_ADDRESS") == 90 * 86400
    assert policies.ttl_for("PHONE_NUMBER") is None
    assert config_from_data(None).policies() == Policies()


@pytest.mark.parametrize(
    ("types", "field"),
    [
        ({"PIN": {"retention": "keep"}}, "types.PIN.retention"),
        ({"PIN": {"retention": {"retain": "forever"}}}, "types.PIN.retention.retain"),
        ({"PIN": {"retention": {"retain": "1d", "then": "x"}}}, "types.PIN.retention"),
        ({"PIN": {"retention": ["mask"]}}, "types.PIN.retention"),
        ({"PIN": {"ttl": "soon"}}, "types.PIN.ttl"),
    ],
)
def test_bad_retention_names_the_field(tmp_path: Path, types: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_data({"types": types})
    assert caught.value.name == field
    config = tmp_path / "bad.yml"
    config.write_text(yaml.safe_dump({"types": types}))
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        create_app(make_settings(tmp_path, config=config))


def test_bad_custom_type_retention_names_its_index() -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_data({"custom_types": [{"name": "A", "regex": "a", "ttl": "1y"}]})
    assert caught.value.name == "custom_types.0.ttl"


def test_lifecycle_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert (settings.idle_timeout_seconds, settings.sweep_interval_seconds) == (1800, 30)
    monkeypatch.setenv("COATCHECK_IDLE_TIMEOUT_SECONDS", "0")
    assert load_settings().idle_timeout_seconds == 0  # off
