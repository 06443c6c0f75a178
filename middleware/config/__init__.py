"""The configuration: one frozen root model for the YAML file, one error for start-up.

    config = load_config(settings.config)      # CoatcheckConfig, or ConfigError (one line)
    config.detect_config(), config.policies(), config.actions, config.grants.ttl_seconds,
    config.export, config.external, config.checks

Environment settings (`COATCHECK_*`) are `coatcheck.middleware.settings.Settings`; their
errors are the same `ConfigError`.  docs/config.md describes every key.
"""

from coatcheck.middleware.config.checks import (
    CHECK_NAME,
    DEFAULT_CHECK_BUDGET,
    CheckName,
    ChecksSection,
    DeclaredCheck,
)
from coatcheck.middleware.config.errors import ConfigError, error_message, from_validation
from coatcheck.middleware.config.load import (
    SETTING,
    build_detector,
    config_from_data,
    load_config,
)
from coatcheck.middleware.config.root import CoatcheckConfig, GrantsSection, builtin_types

__all__ = [
    "CHECK_NAME",
    "DEFAULT_CHECK_BUDGET",
    "SETTING",
    "CheckName",
    "ChecksSection",
    "CoatcheckConfig",
    "ConfigError",
    "DeclaredCheck",
    "GrantsSection",
    "build_detector",
    "builtin_types",
    "config_from_data",
    "error_message",
    "from_validation",
    "load_config",
]
