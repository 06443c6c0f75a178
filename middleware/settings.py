"""Environment settings: the `COATCHECK_*` variables (pydantic-settings), frozen.

Validated once at start; an error is the same one-line `ConfigError` as the YAML file's,
naming the variable (`COATCHECK_PORT: ...`) and never its value.  The YAML file the
`COATCHECK_CONFIG` variable points at is `coatcheck.middleware.config` (one root model).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from coatcheck.middleware.config.errors import ConfigError, error_message
from coatcheck.vault.keys import KINDS, ProviderSettings

__all__ = ["REMOVED", "TENANT", "Settings", "load_settings"]

# One deployment is one tenant (issue 14): several tenants use several databases or
# PostgreSQL schemas, since the gateway's tables (history, state, rates) have no tenant
# column.  The vault still binds every ciphertext to a tenant name in its associated data,
# so the name stays fixed at the old default: every value stored before stays readable.
TENANT = "default"
# Variables that were settings once and would now be ignored silently: refused at start.
REMOVED = {
    "COATCHECK_TENANT": "removed: one deployment serves one tenant; give each tenant its own "
    "database (or PostgreSQL schema) and unset this variable",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COATCHECK_", extra="ignore", frozen=True)

    database_url: str = "sqlite:///coatcheck.db"
    master_key: SecretStr | None = None
    key_file: Path = Path("coatcheck.key")
    # The key provider (docs/keys.md): file | env | pkcs11 | transit; unset: env when
    # COATCHECK_MASTER_KEY is set, else the key file.  Older host roots (rotation, the move
    # to PKCS#11): key files separated by os.pathsep, or an older master key.
    key_provider: str | None = None
    previous_key_files: str | None = None
    previous_master_key: SecretStr | None = None
    pkcs11_module: str | None = None
    pkcs11_token: str | None = None
    pkcs11_pin: SecretStr | None = None
    pkcs11_root_label: str = "coatcheck-root"
    transit_addr: str | None = None
    transit_token: SecretStr | None = None
    transit_mount: str = "transit"
    transit_key: str = "coatcheck-root"
    # KEK buckets: a data key's KEK is destroyed once its bucket ended this long ago and
    # nothing in it survives (the shredding bound: bucket + grace + one sweep).
    kek_bucket_seconds: float = Field(default=86400.0, ge=60, le=366 * 86400)
    kek_grace_seconds: float = Field(default=3600.0, ge=0, le=30 * 86400)
    # How often each worker's sweeper verifies the audit chain (incrementally; 0: never).
    audit_verify_seconds: float = Field(default=300.0, ge=0, le=86400)
    config: Path | None = None
    bot_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Gateway limits: every one answers with a clear 4xx when exceeded.
    max_body_bytes: int = Field(default=64 * 1024, ge=256)
    max_message_chars: int = Field(default=4000, ge=1)
    max_json_depth: int = Field(default=16, ge=2, le=256)
    rate_limit: int = Field(default=60, ge=1)
    rate_window_seconds: int = Field(default=60, ge=1)
    bot_timeout_seconds: float = Field(default=30.0, gt=0)
    apikeys_file: Path = Path("coatcheck.apikeys")
    # Verified API keys are cached per worker this long (0 disables): a deleted key keeps
    # working for at most this many seconds.
    apikey_cache_seconds: float = Field(default=10.0, ge=0, le=300)
    # Threads per worker doing the per-message database work; unset: 1 on SQLite (one
    # writer at a time anyway; more threads only meet in SQLite's sleeping busy handler),
    # 8 on PostgreSQL.
    db_threads: int | None = Field(default=None, ge=1, le=64)
    # Lifecycle (docs/lifecycle.md): a conversation with no message for this long is ended
    # by the sweeper (0: never); the sweeper runs every `sweep_interval_seconds` in each
    # worker (0: not at all), database locks keep each end and expiry to one worker.
    idle_timeout_seconds: float = Field(default=1800.0, ge=0, le=30 * 86400)
    sweep_interval_seconds: float = Field(default=30.0, ge=0, le=3600)
    log_level: str = "INFO"
    # The LLM gateway (docs/llm.md): the model provider's OpenAI-compatible base URL (ending
    # in /v1) and its API key; unset: `/openai/v1/*` answers 503 `llm_not_configured`.
    llm_upstream_url: str | None = None
    llm_upstream_api_key: SecretStr | None = None
    llm_timeout_seconds: float = Field(default=300.0, gt=0, le=3600)

    @field_validator("database_url")
    @classmethod
    def _known_dialect(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:// or postgresql:// URL")
        return value

    @field_validator("llm_upstream_url")
    @classmethod
    def _llm_base_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("must be a base URL without credentials, query or fragment")
        if not parts.path.rstrip("/").endswith("/v1"):
            raise ValueError("must be the provider's base URL, ending in /v1")
        return value.rstrip("/")

    @field_validator("key_provider")
    @classmethod
    def _known_provider(cls, value: str | None) -> str | None:
        if value is not None and value not in KINDS:
            raise ValueError(f"must be one of {', '.join(KINDS)}")
        return value

    @field_validator("idle_timeout_seconds")
    @classmethod
    def _idle_floor(cls, value: float) -> float:
        if 0 < value < 60:
            raise ValueError("must be 0 (off) or at least 60 seconds")
        return value

    @property
    def tenant(self) -> str:
        """The vault's tenant name: fixed (`TENANT`), no longer a setting."""
        return TENANT

    def provider_settings(self) -> ProviderSettings:
        """What `coatcheck.vault.keys.open_provider` needs (secrets unwrapped here only)."""

        def secret(value: SecretStr | None) -> str | None:
            return None if value is None else value.get_secret_value()

        previous = self.previous_key_files or ""
        return ProviderSettings(
            kind=self.key_provider,
            key_file=self.key_file,
            master_key_b64=secret(self.master_key),
            pkcs11_module=self.pkcs11_module,
            pkcs11_token=self.pkcs11_token,
            pkcs11_pin=secret(self.pkcs11_pin),
            pkcs11_root_label=self.pkcs11_root_label,
            transit_addr=self.transit_addr,
            transit_token=secret(self.transit_token),
            transit_mount=self.transit_mount,
            transit_key=self.transit_key,
            previous_key_files=tuple(Path(p) for p in previous.split(os.pathsep) if p),
            previous_master_key_b64=secret(self.previous_master_key),
        )


def load_settings() -> Settings:
    """Settings from the environment; a `ConfigError` names `COATCHECK_<FIELD>` (or a
    removed variable that is still set: silently ignoring it would split one tenant's
    expectations from what runs)."""
    for name, message in REMOVED.items():
        if name in os.environ:
            raise ConfigError(name, message)
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors(include_input=False)[0]
        field = str(first["loc"][0]) if first["loc"] else "settings"
        raise ConfigError(f"COATCHECK_{field.upper()}", error_message(first)) from None
