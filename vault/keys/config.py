"""Choosing and opening the key provider from settings (errors name the setting).

`COATCHECK_KEY_PROVIDER`: `file` (the key file, `COATCHECK_KEY_FILE`), `env`
(`COATCHECK_MASTER_KEY`) or `pkcs11` (`COATCHECK_PKCS11_MODULE`, `COATCHECK_PKCS11_TOKEN`,
`COATCHECK_PKCS11_PIN`, `COATCHECK_PKCS11_ROOT_LABEL`) or `transit` (a HashiCorp Vault /
OpenBao transit engine: `COATCHECK_TRANSIT_ADDR`, `COATCHECK_TRANSIT_TOKEN`,
`COATCHECK_TRANSIT_MOUNT`, `COATCHECK_TRANSIT_KEY`).  Unset, it is `env` when
`COATCHECK_MASTER_KEY` is set and `file` otherwise: today's behaviour.

Rotation and migration (docs/keys.md): `COATCHECK_PREVIOUS_KEY_FILES` (paths separated by
`os.pathsep`) and `COATCHECK_PREVIOUS_MASTER_KEY` name older host roots; with either set,
the provider is a `ProviderChain(configured, *previous)` that seals with the configured
root and still opens what the older ones sealed, until `coatcheck keys rotate-root` has
moved everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from coatcheck.vault.errors import KeyConfigError
from coatcheck.vault.keys.chain import ProviderChain
from coatcheck.vault.keys.host import EnvKeyProvider, FileKeyProvider
from coatcheck.vault.keys.provider import KeyProvider

__all__ = ["KINDS", "ProviderSettings", "open_provider"]

KINDS = ("file", "env", "pkcs11", "transit")


@dataclass(frozen=True)
class ProviderSettings:
    """What `open_provider` needs; the service fills it from its `COATCHECK_*` settings."""

    kind: str | None = None
    key_file: Path = Path("coatcheck.key")
    master_key_b64: str | None = field(default=None, repr=False)
    pkcs11_module: str | None = None
    pkcs11_token: str | None = None
    pkcs11_pin: str | None = field(default=None, repr=False)
    pkcs11_root_label: str = "coatcheck-root"
    transit_addr: str | None = None
    transit_token: str | None = field(default=None, repr=False)
    transit_mount: str = "transit"
    transit_key: str = "coatcheck-root"
    previous_key_files: tuple[Path, ...] = ()
    previous_master_key_b64: str | None = field(default=None, repr=False)


def _required(value: str | None, setting: str) -> str:
    if not value:
        raise KeyConfigError(setting, f"{setting}: required by this COATCHECK_KEY_PROVIDER")
    return value


def open_provider(settings: ProviderSettings) -> KeyProvider:
    """The configured provider, its root key validated (the key file made 0600 if absent);
    a `ProviderChain` when older roots are configured."""
    primary = _open_primary(settings)
    older: list[KeyProvider] = []
    try:
        for path in settings.previous_key_files:
            if not path.exists():  # an old root is never made up: it must be there
                raise KeyConfigError(
                    "COATCHECK_PREVIOUS_KEY_FILES",
                    f"COATCHECK_PREVIOUS_KEY_FILES: no key file {path}",
                )
            older.append(FileKeyProvider(path, "COATCHECK_PREVIOUS_KEY_FILES"))
        if settings.previous_master_key_b64 is not None:
            older.append(
                EnvKeyProvider(settings.previous_master_key_b64, "COATCHECK_PREVIOUS_MASTER_KEY")
            )
    except BaseException:
        primary.close()
        raise
    return ProviderChain(primary, *older) if older else primary


def _open_primary(settings: ProviderSettings) -> KeyProvider:
    kind = settings.kind or ("env" if settings.master_key_b64 is not None else "file")
    if kind == "file":
        return FileKeyProvider(settings.key_file)
    if kind == "env":
        return EnvKeyProvider(_required(settings.master_key_b64, "COATCHECK_MASTER_KEY"))
    if kind == "pkcs11":
        module = _required(settings.pkcs11_module, "COATCHECK_PKCS11_MODULE")
        token = _required(settings.pkcs11_token, "COATCHECK_PKCS11_TOKEN")
        pin = _required(settings.pkcs11_pin, "COATCHECK_PKCS11_PIN")
        try:
            from coatcheck.vault.keys.pkcs11 import Pkcs11KeyProvider
        except ImportError:
            raise KeyConfigError(
                "COATCHECK_KEY_PROVIDER",
                "COATCHECK_KEY_PROVIDER: pkcs11 needs python-pkcs11: "
                "pip install 'coatcheck[pkcs11]'",
            ) from None
        return Pkcs11KeyProvider(module, token, pin, settings.pkcs11_root_label)
    if kind == "transit":
        from coatcheck.vault.keys.transit import TransitKeyProvider

        return TransitKeyProvider(
            _required(settings.transit_addr, "COATCHECK_TRANSIT_ADDR"),
            _required(settings.transit_token, "COATCHECK_TRANSIT_TOKEN"),
            settings.transit_mount,
            settings.transit_key,
        )
    raise KeyConfigError(
        "COATCHECK_KEY_PROVIDER", f"COATCHECK_KEY_PROVIDER: must be one of {', '.join(KINDS)}"
    )
