"""Config validation: errors name the field, never echo the value."""

from __future__ import annotations

from typing import Any

import pytest

from coatcheck.middleware.detect import ConfigError, load_config


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"types": {"PIN": {"mask": {"first": -1}}}}, "types.PIN.mask.first"),
        ({"detection": {"place_min_population": 50000}}, "detection.place_min_population"),
        ({"detection": {"places": "maybe"}}, "detection.places"),
        ({"types": {"PIN": {"display": "shout"}}}, "types.PIN.display"),
        ({"types": {"PIN": {"replacement": "has space"}}}, "types.PIN.replacement"),
        ({"types": {"PIN": {"pattern": "(unclosed"}}}, "types.PIN.pattern"),
        ({"types": {"PIN": {"colour": "red"}}}, "types.PIN.colour"),
        ({"custom_types": [{"name": "bad name", "regex": "x"}]}, "custom_types.0.name"),
        (
            {"custom_types": [{"name": "ACCT", "regex": "x", "validator": "nope"}]},
            "custom_types.0.validator",
        ),
        ({"detection": {"default_region": "usa"}}, "detection.default_region"),
    ],
)
def test_errors_name_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(data)
    assert info.value.name == field
    assert str(info.value).startswith(field)
    assert "has space" not in str(info.value)


def test_valid_config_and_confirm_types() -> None:
    cfg = load_config(
        {
            "types": {"EMAIL_ADDRESS": {"confirm": True, "display": "mask"}},
            "custom_types": [{"name": "ACCOUNT", "regex": r"ACC\d{6}", "confirm": True}],
            "actions": {"ignored": ["owned elsewhere"]},
        }
    )
    assert cfg.confirm_types() == frozenset({"EMAIL_ADDRESS", "ACCOUNT"})
    assert cfg.settings_for("EMAIL_ADDRESS").display == "mask"
    assert cfg.settings_for("PIN").display == "redaction"
    assert cfg.detection.default_region is None  # the locales' regions decide


def test_example_yaml_is_valid() -> None:
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parents[2] / "config" / "coatcheck.example.yaml"
    cfg = load_config(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert cfg.settings_for("LOYALTY_CARD").validator == "luhn"  # type: ignore[attr-defined]
    assert "EMAIL_ADDRESS" in cfg.confirm_types()


@pytest.mark.parametrize(
    ("detection", "places_on"),
    [
        ({}, False),
        ({"places": True}, False),  # the gazetteer runs only beside the model
        ({"ner": True}, True),
        ({"ner": True, "places": False}, False),
    ],
)
def test_places_follow_ner(detection: dict[str, object], places_on: bool) -> None:
    from coatcheck.middleware.detect import load_config

    assert load_config({"detection": detection}).detection.places_on is places_on


@pytest.mark.parametrize(
    ("detection", "field"),
    [
        ({"locales": ["xx-DE"]}, "detection.locales"),
        ({"locales": ["de-QQ"]}, "detection.locales"),
        ({"locales": ["de_DE"]}, "detection.locales"),
        ({"locales": []}, "detection.locales"),
        ({"locales": ["de-DE", "de-DE"]}, "detection.locales"),
        ({"ner_models": {"eng": "x"}}, "detection.ner_models"),
        ({"presidio": {"unknown": 1}}, "detection.presidio.unknown"),
        ({"secret": True}, "detection.secret"),
    ],
)
def test_detection_errors_name_the_field(detection: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"detection": detection})
    assert info.value.name == field


def test_default_locales_are_the_eight() -> None:
    cfg = load_config({})
    assert cfg.detection.locales == (
        "en-US",
        "en-GB",
        "de-DE",
        "fr-FR",
        "es-ES",
        "it-IT",
        "nl-NL",
        "pt-BR",
    )
