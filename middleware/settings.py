"""Service settings: `COATCHECK_*` environment variables plus one YAML file.

Validated once at start; every error names the field (the environment variable) so an
operator knows what to fix.  The YAML file (`COATCHECK_CONFIG`) holds the per-type
configuration (display modes, context rules, custom types, retention, action allow-list);
its sections are validated by the parts that own them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COATCHECK_", extra="ignore")

    database_url: str = "sqlite:///coatcheck.db"
    master_key: SecretStr | None = None
    key_file: Path = Path("coatcheck.key")
    tenant: str = "default"
    config: Path | None = None
    bot_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    @field_validator("database_url")
    @classmethod
    def _known_dialect(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("COATCHECK_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        return value

    def load_yaml(self) -> dict[str, Any]:
        """The YAML config as a dict ({} when none is set)."""
        if self.config is None:
            return {}
        try:
            data = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"COATCHECK_CONFIG: cannot read {self.config}: {exc}") from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ValueError("COATCHECK_CONFIG: the file must hold a mapping at the top level")
        return data
