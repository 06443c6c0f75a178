"""Checksum validators by name, so YAML custom types can say `validator: luhn`.

Each takes the matched (normalised) text and says whether it is a real value; separators
are stripped first. Well-kept libraries (python-stdnum, ipaddress) do the work where they can.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Mapping

from stdnum import iban, luhn
from stdnum.gb import nhs

__all__ = ["VALIDATORS", "Validator", "digits_only"]

Validator = Callable[[str], bool]

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def digits_only(value: str) -> str:
    """The digits of a value, separators dropped."""
    return re.sub(r"\D", "", value)


def _luhn(value: str) -> bool:
    digits = digits_only(value)
    return len(set(digits)) > 1 and bool(luhn.is_valid(digits))


def _iban(value: str) -> bool:
    return bool(iban.is_valid(value))


def _nhs(value: str) -> bool:
    digits = digits_only(value)
    return len(set(digits)) > 1 and bool(nhs.is_valid(digits))


def _ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _base58check(value: str) -> bool:
    number = 0
    for char in value:
        position = _B58.find(char)
        if position < 0:
            return False
        number = number * 58 + position
    pad = len(value) - len(value.lstrip("1"))
    raw = b"\x00" * pad + number.to_bytes((number.bit_length() + 7) // 8, "big")
    if len(raw) != 25:
        return False
    body, check = raw[:-4], raw[-4:]
    return hashlib.sha256(hashlib.sha256(body).digest()).digest()[:4] == check


def _bech32_polymod(values: list[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(generator):
            chk ^= gen if (top >> i) & 1 else 0
    return chk


def _bech32(value: str) -> bool:
    if value.lower() != value and value.upper() != value:
        return False
    lowered = value.lower()
    hrp, _, data = lowered.rpartition("1")
    if not hrp or len(data) < 6 or any(c not in _BECH32 for c in data):
        return False
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    residue = _bech32_polymod(expanded + [_BECH32.index(c) for c in data])
    return residue in (1, 0x2BC830A3)  # bech32 and bech32m


def _btc(value: str) -> bool:
    return _bech32(value) if value.lower().startswith("bc1") else _base58check(value)


VALIDATORS: Mapping[str, Validator] = {
    "luhn": _luhn,
    "iban": _iban,
    "nhs": _nhs,
    "ip": _ip,
    "btc": _btc,
}
