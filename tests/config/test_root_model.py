"""The root config model: the shipped files load, it is frozen, and what counts as a type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from coatcheck.middleware.config import (
    ConfigError,
    build_detector,
    builtin_types,
    config_from_data,
    load_config,
)
from coatcheck.middleware.detect import DetectionSettings
from coatcheck.middleware.detect import load_config as load_detect_config
from coatcheck.middleware.render import display_for
from coatcheck.vault import Retention

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", ["config/coatcheck.example.yaml", "e2e/coatcheck.yml"])
def test_shipped_configs_load(path: str) -> None:
    config = load_config(ROOT / path)
    data = yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))
    assert config.detect_config() == load_detect_config(data)  # detection reads the same


def test_example_sections() -> None:
    config = load_config(ROOT / "config" / "coatcheck.example.yaml")
    policies = config.policies()
    assert policies.retention_for("PHONE_NUMBER") == Retention("retain", 30 * 86400)
    assert policies.ttl_for("PIN") == 300
    assert "EMAIL_ADDRESS" in config.detect_config().confirm_types()
    assert config.grants.ttl_seconds == 30 and config.actions == {}
    card = config.detect_config().settings_for("CREDIT_CARD")
    assert display_for("4111 1111 1111 1111", "0123456789", card) == "###############1111"


def test_frozen() -> None:
    config = config_from_data({"actions": {"a": ["EMAIL_ADDRESS"]}})
    with pytest.raises(ValidationError):
        config.grants = config.grants  # type: ignore[misc]
    assert config.actions == {"a": frozenset({"EMAIL_ADDRESS"})}


@pytest.mark.parametrize(
    "types",
    [
        {"PIN": {"display": "mask"}},  # built in (a context rule)
        {"CREDIT_CARD": {"display": "mask"}},  # built in (a global pattern)
        {"ACCT": {"confirm": True}},  # a custom type below
        {"CARD_PIN": {"capture": "whole"}},  # a context rule of its own
        {"ORDER_REF": {"pattern": r"ORD-\d+"}},  # ditto, by pattern
    ],
)
def test_known_types(types: dict[str, object]) -> None:
    custom = [{"name": "ACCT", "regex": r"ACC-\d{6}"}]
    assert config_from_data({"types": types, "custom_types": custom}).types.keys() == types.keys()


def test_empty_sections_take_their_defaults() -> None:
    config = load_config(None)
    assert config == config_from_data(yaml.safe_load("export:\nexternal:\nactions:\n"))


def test_a_missing_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yml")
    assert str(caught.value) == "COATCHECK_CONFIG: cannot read the file (No such file or directory)"


def _emitted(texts: list[str]) -> set[str]:
    detector = build_detector(load_config(None).detect_config())
    return {span.entity_type for text in texts for span in detector.detect(text)}


def test_every_type_detection_emits_is_a_known_type() -> None:
    """What the detector finds on the multilingual dev set (national ids, secrets, names,
    addresses, card codes...) may be configured under `types:` by name."""
    rows = (ROOT / "bench" / "data" / "locales_dev.jsonl").read_text(encoding="utf-8")
    texts = [json.loads(line)["text"] for line in rows.splitlines()]
    texts += ["AKIAIOSFODNN7EXAMPLE", "password: hunter22!x", "sort code 12-34-56"]
    emitted = _emitted(texts)
    assert {"FR_NIR", "BR_CPF", "UK_NINO", "PERSON", "ADDRESS", "SECRET_AWS_ACCESS_KEY"} <= emitted
    known = builtin_types(DetectionSettings())
    assert emitted <= known
    config = config_from_data({"types": {name: {"display": "mask"} for name in emitted}})
    assert config.types.keys() == emitted


def test_national_ids_of_unconfigured_locales_are_still_names() -> None:
    """The type names do not depend on the locales configured (a config may set a type's
    display before adding its locale)."""
    data = {"detection": {"locales": ["en-US"]}, "types": {"FR_NIR": {"display": "mask"}}}
    assert list(config_from_data(data).types) == ["FR_NIR"]


def test_presidio_plug_in_types_count_only_when_configured() -> None:
    types = {"AU_ABN": {"display": "mask"}}
    with pytest.raises(ConfigError) as refused:
        config_from_data({"types": types})
    assert refused.value.path == "types.AU_ABN"
    plugin = {"presidio": {"recognizers": ["AuAbnRecognizer"]}}
    assert list(config_from_data({"detection": plugin, "types": types}).types) == ["AU_ABN"]
    broken = {"presidio": {"recognizers": ["NoSuchRecognizer"]}}
    with pytest.raises(ConfigError) as caught:
        config_from_data({"detection": broken, "types": types})
    assert caught.value.path == "detection.presidio.recognizers.0"  # what to fix
