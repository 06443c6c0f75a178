"""What only the token can show: keys that never leave it, a destroy other processes see."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from coatcheck.vault import KeyConfigError
from coatcheck.vault.keys import KeyDestroyed
from tests.keys.conftest import SoftToken

pytestmark = pytest.mark.usefixtures("soft_token")

ROOT = Path(__file__).resolve().parents[2]
DEK = os.urandom(32)
CTX = b"dek|default|conv-9|epoch-1"


def _provider(token: SoftToken) -> Any:
    from coatcheck.vault.keys.pkcs11 import Pkcs11KeyProvider

    return Pkcs11KeyProvider(token.module, token.label, token.pin)


def test_keys_are_never_extractable(soft_token: SoftToken) -> None:
    """The token itself refuses every way out: read the value, wrap it out, unlock it."""
    import pkcs11
    from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
    from pkcs11 import exceptions as p11

    with _provider(soft_token) as provider:
        provider.create_kek("default/live/2025-01-05/0")
    lib = pkcs11.lib(soft_token.module)  # the provider closed: the module is ours now
    try:
        token = lib.get_token(token_label=soft_token.label)
        with token.open(user_pin=soft_token.pin, rw=True) as session:
            keys = list(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}))
            assert sorted(k.label for k in keys) == ["coatcheck-root", "default/live/2025-01-05/0"]
            wrapping = session.generate_key(
                KeyType.AES, 256, store=False, template={Attribute.WRAP: True}
            )
            for key in keys:
                assert key[Attribute.SENSITIVE] and key[Attribute.ALWAYS_SENSITIVE]
                assert not key[Attribute.EXTRACTABLE] and key[Attribute.NEVER_EXTRACTABLE]
                assert key[Attribute.TOKEN] and key[Attribute.PRIVATE]
                with pytest.raises(p11.AttributeSensitive):
                    key[Attribute.VALUE]
                with pytest.raises(p11.KeyUnextractable):
                    wrapping.wrap_key(key, mechanism=Mechanism.AES_KEY_WRAP_PAD)
                with pytest.raises(p11.PKCS11Error):
                    key[Attribute.EXTRACTABLE] = True
                assert not key[Attribute.EXTRACTABLE]
    finally:
        lib.finalize()


def _token_args(token: SoftToken) -> list[str]:
    return [token.module, token.label, token.pin]


_DESTROY = """
import sys
from coatcheck.vault.keys.pkcs11 import Pkcs11KeyProvider
module, label, pin, kek_id, record = sys.argv[1:6]
with Pkcs11KeyProvider(module, label, pin) as provider:
    provider.destroy_kek(kek_id, bytes.fromhex(record))
"""


def test_a_destroy_in_another_worker_process_is_seen_at_once(soft_token: SoftToken) -> None:
    kek_id = "default/live/2025-01-06/0"
    with _provider(soft_token) as provider:
        record = provider.create_kek(kek_id)
        kek = provider.open_kek(kek_id, record)
        wrapped = kek.wrap(DEK, CTX)
        subprocess.run(
            [sys.executable, "-c", _DESTROY, *_token_args(soft_token), kek_id, record.hex()],
            env={**soft_token.env(), "PYTHONPATH": str(ROOT)},
            check=True,
            timeout=60,
        )
        with pytest.raises(KeyDestroyed):
            kek.unwrap(wrapped, CTX)  # the handle this worker opened before
        with pytest.raises(KeyDestroyed):
            provider.open_kek(kek_id, record)  # a copy of the record, taken before


def test_two_providers_share_the_login_and_close_independently(soft_token: SoftToken) -> None:
    first, second = _provider(soft_token), _provider(soft_token)
    assert first.root_id == second.root_id
    record = first.create_kek("t/live/d/0")
    wrapped = first.open_kek("t/live/d/0", record).wrap(DEK, CTX)
    first.close()
    assert second.open_kek("t/live/d/0", record).unwrap(wrapped, CTX) == DEK
    second.close()


def test_threads_share_one_provider(soft_token: SoftToken) -> None:
    """Calls into the module are serialised: 8 threads, every round trip intact."""
    with _provider(soft_token) as provider:
        kek = provider.open_kek("t/live/d/1", provider.create_kek("t/live/d/1"))

        def round_trip(i: int) -> bool:
            context = CTX + str(i).encode()
            dek = os.urandom(32)
            sealed = provider.unseal(provider.seal(dek, context), context) == dek
            return sealed and kek.unwrap(kek.wrap(dek, context), context) == dek

        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(round_trip, range(400)))


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"pin": "0000-wrong"}, "COATCHECK_PKCS11_PIN"),
        ({"label": "no-such-token"}, "COATCHECK_PKCS11_TOKEN"),
        ({"root_label": "no-such-root"}, "COATCHECK_PKCS11_ROOT_LABEL"),
        ({"module": "/nonexistent/libpkcs11.so"}, "COATCHECK_PKCS11_MODULE"),
    ],
)
def test_configuration_errors_name_the_setting(
    soft_token: SoftToken, change: dict[str, str], setting: str
) -> None:
    from coatcheck.vault.keys.pkcs11 import Pkcs11KeyProvider

    args = {
        "module": soft_token.module,
        "token_label": change.get("label", soft_token.label),
        "pin": change.get("pin", soft_token.pin),
        "root_label": change.get("root_label", "coatcheck-root"),
    }
    args["module"] = change.get("module", soft_token.module)
    with pytest.raises(KeyConfigError) as err:
        Pkcs11KeyProvider(**args)
    assert err.value.setting == setting
    assert str(err.value).startswith(setting + ":")
    assert soft_token.pin not in str(err.value) and "0000-wrong" not in str(err.value)
    with _provider(soft_token) as provider:  # a refused open left nothing half-open
        assert provider.root_id.startswith("p11:")


def test_a_second_root_is_refused(soft_token: SoftToken) -> None:
    from coatcheck.vault.keys.pkcs11 import create_root_key

    with pytest.raises(KeyConfigError) as err:
        create_root_key(soft_token.module, soft_token.label, soft_token.pin)
    assert err.value.setting == "COATCHECK_PKCS11_ROOT_LABEL"
