"""Two roots at once, for root rotation and the move from the key file to PKCS#11.

`ProviderChain(new, old)` seals and creates KEKs with `new` and opens a blob or record with
whichever provider's root made it (the root id in its header says which).  Workers run
with the chain while a re-seal pass moves every sealed blob and KEK record to `new`
(docs/keys.md, "Rotation and migration"); once none names `old`, `old` leaves the
configuration.  No downtime: every worker can read both generations throughout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from coatcheck.vault.keys.errors import UnknownRoot
from coatcheck.vault.keys.provider import Kek, KeyProvider, root_of

if TYPE_CHECKING:
    from coatcheck.vault.keyring import KeyRing

__all__ = ["ProviderChain"]


class ProviderChain(KeyProvider):
    """Seal with the first provider; open with the one whose root made the blob."""

    kind = "chain"

    def __init__(self, primary: KeyProvider, *older: KeyProvider) -> None:
        self._providers = (primary, *older)
        # Final only when every generation's destroy is: an old file-held KEK is not.
        self.destroy_is_final = all(p.destroy_is_final for p in self._providers)

    def __repr__(self) -> str:
        return f"ProviderChain({', '.join(repr(p) for p in self._providers)})"

    @property
    def primary(self) -> KeyProvider:
        return self._providers[0]

    @property
    def providers(self) -> tuple[KeyProvider, ...]:
        """Every generation, the primary first."""
        return self._providers

    @property
    def root_id(self) -> str:
        return self.primary.root_id

    def legacy_keyring(self) -> KeyRing | None:
        return next((k for p in self._providers if (k := p.legacy_keyring()) is not None), None)

    def owner(self, blob: bytes) -> KeyProvider:
        """The provider whose root made `blob`; `UnknownRoot` if none of them did."""
        root_id = root_of(blob)
        for provider in self._providers:
            if provider.root_id == root_id:
                return provider
        raise UnknownRoot(root_id)

    def seal(self, secret: bytes, context: bytes) -> bytes:
        return self.primary.seal(secret, context)

    def unseal(self, blob: bytes, context: bytes) -> bytes:
        return self.owner(blob).unseal(blob, context)

    def reseal(self, blob: bytes, context: bytes) -> bytes:
        """`blob` sealed under the primary root (unchanged if it already is)."""
        if self.primary.holds(blob):
            return blob
        return self.primary.seal(self.unseal(blob, context), context)

    def create_kek(self, kek_id: str) -> bytes:
        return self.primary.create_kek(kek_id)

    def open_kek(self, kek_id: str, record: bytes) -> Kek:
        if not record:
            return self.primary.open_kek(kek_id, record)  # erased: KeyDestroyed
        return self.owner(record).open_kek(kek_id, record)

    def destroy_kek(self, kek_id: str, record: bytes) -> None:
        if record:
            self.owner(record).destroy_kek(kek_id, record)

    def close(self) -> None:
        for provider in self._providers:
            provider.close()
