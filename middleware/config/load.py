"""Reading the YAML file into the root model, once, with one error style."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from coatcheck.middleware.config.errors import ConfigError, from_validation
from coatcheck.middleware.config.root import CoatcheckConfig
from coatcheck.middleware.detect import DetectConfig, DetectError, Detector

__all__ = ["SETTING", "build_detector", "config_from_data", "load_config"]

SETTING = "COATCHECK_CONFIG"


def config_from_data(data: object) -> CoatcheckConfig:
    """The validated model of an already parsed YAML document (None: an empty file)."""
    if data is None:
        return CoatcheckConfig()
    if not isinstance(data, dict):
        raise ConfigError(SETTING, "the file must hold a mapping at the top level")
    try:
        return CoatcheckConfig.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, SETTING) from None
    except DetectError as exc:  # a detection part that cannot load (presidio plug-ins)
        raise _detect_error(exc) from None


def load_config(path: Path | None) -> CoatcheckConfig:
    """The file at `path` (None: no file, every default).  Errors quote nothing from it:
    a YAML syntax error gives its position only (PyYAML's message shows the line)."""
    if path is None:
        return CoatcheckConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise ConfigError(SETTING, f"cannot read the file ({reason or 'I/O error'})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(SETTING, f"not valid YAML{where}") from None
    return config_from_data(data)


def build_detector(config: DetectConfig) -> Detector:
    """The detector for `config`; a part it cannot load (`detection.ner` without its extra)
    is a `ConfigError` too, naming the field."""
    try:
        return Detector(config)
    except DetectError as exc:
        raise _detect_error(exc) from None


def _detect_error(exc: DetectError) -> ConfigError:
    """Detection's error as the config's one line, at detection's own dotted field."""
    return ConfigError(SETTING, str(exc).removeprefix(f"{exc.name}: "), exc.name)
