"""The PKCS#11 provider: the root key and every KEK are non-extractable token objects.

Nothing secret of the provider ever leaves the token: sealing and wrapping are
`C_Encrypt`/`C_Decrypt` with `CKM_AES_GCM` inside it (the 12-byte IV drawn by the host, the
context as GCM's AAD), so a wrapped key has the vault's usual `nonce | ciphertext | tag`
form.  A KEK is an AES-256 object created with `CKA_TOKEN`, `CKA_PRIVATE`, `CKA_SENSITIVE`,
not `CKA_EXTRACTABLE`, only `CKA_ENCRYPT`/`CKA_DECRYPT`; the record the vault stores is just
its random `CKA_ID`.  `destroy_kek` is `C_DestroyObject`: a copy of the database taken before
holds the wrapped data keys and a pointer to nothing (`destroy_is_final = True`).  The root
is created once by `create_root_key` (an explicit operator step, so two workers cannot each
make one) and found by its label.

Library: `python-pkcs11` (the `pkcs11` extra), tested on SoftHSM2 2.6 (Debian's `softhsm2`).
It initialises the module with `C_Initialize(NULL)`, i.e. without library locking, so every
call into a module goes through one lock per process; and a login belongs to the whole
application, so providers of one process share one session per token (reference-counted;
the last `close` logs out and finalises the module).  Open providers in the worker process,
never before a fork.  Each token call takes ~15 us on SoftHSM; `bench/keys.py` measures.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.mechanisms import GCMParams

from coatcheck.vault import _crypto
from coatcheck.vault.errors import DecryptionError, KeyConfigError
from coatcheck.vault.keys.errors import KeyDestroyed, ProviderUnavailable
from coatcheck.vault.keys.provider import SEALED, TOKEN_KEK, Kek, KeyProvider, header

__all__ = ["DEFAULT_ROOT_LABEL", "KEY_TEMPLATE", "Pkcs11KeyProvider", "create_root_key"]

DEFAULT_ROOT_LABEL = "coatcheck-root"
_TAG_BYTES = 16

KEY_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.MODIFIABLE: False,
    Attribute.ENCRYPT: True,
    Attribute.DECRYPT: True,
    Attribute.WRAP: False,
    Attribute.UNWRAP: False,
    Attribute.SIGN: False,
    Attribute.VERIFY: False,
    Attribute.DERIVE: False,
}
"""Every key this provider makes: on the token, behind the PIN, never readable or exportable."""

_GONE = (p11.ObjectHandleInvalid, p11.KeyHandleInvalid, p11.NoSuchKey)
_DEVICE = (
    p11.DeviceError,
    p11.DeviceMemory,
    p11.DeviceRemoved,
    p11.SessionClosed,
    p11.SessionHandleInvalid,
    p11.TokenNotPresent,
    p11.UserNotLoggedIn,
    p11.HostMemory,
)

_LOCK = threading.RLock()  # C_Initialize(NULL): the module may not be entered concurrently


@dataclass
class _Shared:
    lib: Any
    session: Any
    users: int


_SHARED: dict[tuple[str, str], _Shared] = {}


def _config_error(setting: str, message: str) -> KeyConfigError:
    return KeyConfigError(setting, f"{setting}: {message}")


def _acquire(module: str, token_label: str, pin: str) -> Any:
    """The process's logged-in session on the token (opened on first use).

    SoftHSM2 lists the tokens it finds on disk when the module is initialised; a token file
    that another process is rewriting at that moment (creating a KEK, say) is skipped, so
    the token seems absent, or its token info fails with CKR_GENERAL_ERROR.  A missing token
    is therefore looked for again on a freshly initialised module a few times (about 1.5 s
    in all) before it is a configuration error.
    """
    key = (module, token_label)
    with _LOCK:
        shared = _SHARED.get(key)
        if shared is not None:
            shared.users += 1
            return shared.session
        for delay in (*_TOKEN_RETRY_DELAYS, None):
            try:
                lib = _library(module)
            except p11.PKCS11Error:
                raise _config_error("COATCHECK_PKCS11_MODULE", f"cannot load {module}") from None
            try:
                session = _login(lib, token_label, pin)
            except _TokenNotListed:
                _release_library(module)
                if delay is None:
                    raise _config_error(
                        "COATCHECK_PKCS11_TOKEN", f"no token labelled {token_label!r}"
                    ) from None
                time.sleep(delay)
                continue
            except BaseException:
                _release_library(module)
                raise
            _SHARED[key] = _Shared(lib, session, 1)
            return session
    raise AssertionError("unreachable")  # pragma: no cover


_TOKEN_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8)
_OBJECT_RETRY_DELAYS = (0.05, 0.2)
"""A KEK that a row names but the token does not list is looked for again before it counts
as destroyed: SoftHSM2 shows another process's new object only once its file is complete,
and a KEK taken for destroyed marks its bucket's row destroyed (`vault/_keks.py`).  A row
whose KEK really is gone costs these 0.25 s once: the row is then marked."""


class _TokenNotListed(Exception):
    """The module lists no token of that label (yet: see `_acquire`)."""


def _login(lib: Any, token_label: str, pin: str) -> Any:
    """A read-write session on the token, logged in as the user; errors name the setting."""
    try:
        token = lib.get_token(token_label=token_label)
    except (p11.NoSuchToken, p11.GeneralError):  # GeneralError: SoftHSM2 met a file mid-write
        raise _TokenNotListed from None
    except p11.MultipleTokensReturned:
        raise _config_error(
            "COATCHECK_PKCS11_TOKEN", f"more than one token labelled {token_label!r}"
        ) from None
    try:
        return token.open(user_pin=pin, rw=True)
    except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange, p11.PinLocked):
        raise _config_error("COATCHECK_PKCS11_PIN", "the token refused the PIN") from None
    except p11.PKCS11Error as exc:
        raise ProviderUnavailable("pkcs11", type(exc).__name__) from None


def _release(module: str, token_label: str) -> None:
    with _LOCK:
        shared = _SHARED.get((module, token_label))
        if shared is None:
            return
        shared.users -= 1
        if shared.users > 0:
            return
        del _SHARED[(module, token_label)]
        with contextlib.suppress(p11.PKCS11Error):  # a dead session is closed enough
            shared.session.close()
        _release_library(module)


_LIBS: dict[str, tuple[Any, int]] = {}


def _library(module: str) -> Any:
    lib, users = _LIBS.get(module, (None, 0))
    if lib is None:
        lib = pkcs11.lib(module)
    _LIBS[module] = (lib, users + 1)
    return lib


def _release_library(module: str) -> None:
    lib, users = _LIBS[module]
    if users > 1:
        _LIBS[module] = (lib, users - 1)
        return
    del _LIBS[module]
    lib.finalize()  # the next open re-reads the module's configuration (a new token dir)


def _generate(session: Any, label: str, object_id: bytes) -> Any:
    return session.generate_key(
        KeyType.AES, 256, id=object_id, label=label, store=True, template=KEY_TEMPLATE
    )


def create_root_key(
    module: str, token_label: str, pin: str, root_label: str = DEFAULT_ROOT_LABEL
) -> str:
    """Create the root key on the token (once, by an operator); its root id.

    Refuses when an object with `root_label` exists: a second root would silently split the
    vault in two.
    """
    session = _acquire(module, token_label, pin)
    try:
        with _LOCK:
            if list(session.get_objects({Attribute.LABEL: root_label})):
                raise _config_error(
                    "COATCHECK_PKCS11_ROOT_LABEL", f"the token already holds {root_label!r}"
                )
            object_id = os.urandom(8)
            _generate(session, root_label, object_id)
    finally:
        _release(module, token_label)
    return "p11:" + object_id.hex()


def _gcm(key: Any, encrypt: bool, data: bytes, nonce: bytes, context: bytes) -> bytes:
    params = GCMParams(nonce, context, _TAG_BYTES * 8)
    with _LOCK:
        if encrypt:
            out: bytes = key.encrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params)
        else:
            out = key.decrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params)
    return out


def _seal(key: Any, name: str, secret: bytes, context: bytes) -> bytes:
    nonce = os.urandom(_crypto.NONCE_BYTES)
    try:
        return nonce + _gcm(key, True, secret, nonce, context)
    except _GONE:
        raise KeyDestroyed(name) from None
    except p11.PKCS11Error as exc:
        raise ProviderUnavailable("pkcs11", type(exc).__name__) from None


def _open(key: Any, name: str, blob: bytes, context: bytes) -> bytes:
    if len(blob) < _crypto.NONCE_BYTES + _TAG_BYTES:
        raise DecryptionError()
    nonce, body = blob[: _crypto.NONCE_BYTES], blob[_crypto.NONCE_BYTES :]
    try:
        return _gcm(key, False, body, nonce, context)
    except _GONE:
        raise KeyDestroyed(name) from None
    except _DEVICE as exc:
        raise ProviderUnavailable("pkcs11", type(exc).__name__) from None
    except p11.PKCS11Error:
        raise DecryptionError() from None  # a bad tag is CKR_GENERAL_ERROR on SoftHSM


class TokenKek(Kek):
    """A KEK that is a token object: wrap and unwrap run inside the token."""

    __slots__ = ("_key",)

    def __init__(self, kek_id: str, key: Any) -> None:
        super().__init__(kek_id)
        self._key = key

    def wrap(self, key: bytes, context: bytes) -> bytes:
        return _seal(self._key, self.kek_id, key, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        return _open(self._key, self.kek_id, blob, context)


class Pkcs11KeyProvider(KeyProvider):
    """Root and KEKs on a PKCS#11 token (SoftHSM2 in tests, an HSM in production)."""

    kind: ClassVar[str] = "pkcs11"
    destroy_is_final = True

    def __init__(
        self, module: str, token_label: str, pin: str, root_label: str = DEFAULT_ROOT_LABEL
    ) -> None:
        self._module, self._token_label = module, token_label
        self._session = _acquire(module, token_label, pin)
        self._closed = False
        try:
            with _LOCK:
                self._root = self._session.get_key(
                    object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=root_label
                )
                self._root_id = "p11:" + bytes(self._root[Attribute.ID]).hex()
        except (p11.NoSuchKey, p11.MultipleObjectsReturned):
            self.close()
            raise _config_error(
                "COATCHECK_PKCS11_ROOT_LABEL",
                f"no single root key {root_label!r} on token {token_label!r}; "
                "create it once with create_root_key",
            ) from None

    def __repr__(self) -> str:
        return f"Pkcs11KeyProvider(token={self._token_label!r}, root_id={self._root_id!r})"

    @property
    def root_id(self) -> str:
        return self._root_id

    def seal(self, secret: bytes, context: bytes) -> bytes:
        head = header(SEALED, self._root_id)
        return head + _seal(self._root, self._root_id, secret, head + context)

    def unseal(self, blob: bytes, context: bytes) -> bytes:
        head, body = self._body(blob, SEALED)
        return _open(self._root, self._root_id, body, head + context)

    def create_kek(self, kek_id: str) -> bytes:
        object_id = os.urandom(16)
        try:
            with _LOCK:
                _generate(self._session, kek_id, object_id)
        except p11.PKCS11Error as exc:
            raise ProviderUnavailable("pkcs11", type(exc).__name__) from None
        return header(TOKEN_KEK, self._root_id) + object_id

    def _find(self, kek_id: str, record: bytes) -> Any:
        if not record:
            raise KeyDestroyed(kek_id)
        _, object_id = self._body(record, TOKEN_KEK)
        key = None
        for delay in (*_OBJECT_RETRY_DELAYS, None):
            try:
                with _LOCK:
                    key = self._session.get_key(object_class=ObjectClass.SECRET_KEY, id=object_id)
                    label = key.label
                break
            except _GONE:
                if delay is None:
                    raise KeyDestroyed(kek_id) from None
                time.sleep(delay)
            except p11.PKCS11Error as exc:
                raise ProviderUnavailable("pkcs11", type(exc).__name__) from None
        if label != kek_id:
            raise DecryptionError()  # a record moved to another name opens nothing
        return key

    def open_kek(self, kek_id: str, record: bytes) -> Kek:
        return TokenKek(kek_id, self._find(kek_id, record))

    def destroy_kek(self, kek_id: str, record: bytes) -> None:
        try:
            key = self._find(kek_id, record)
        except KeyDestroyed:
            return
        try:
            with _LOCK:
                key.destroy()
        except _GONE:
            return
        except p11.PKCS11Error as exc:
            raise ProviderUnavailable("pkcs11", type(exc).__name__) from None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _release(self._module, self._token_label)
