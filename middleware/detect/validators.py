"""Checksum validators by name, so YAML custom types can say `validator: luhn`.

Each takes the matched (normalised) text and says whether it is a real value; separators
are stripped first. Well-kept libraries (python-stdnum, ipaddress) do the work where they can.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Final

from stdnum import iban
from stdnum.br import cnpj, cpf
from stdnum.de import idnr
from stdnum.es import ccc, dni, nie
from stdnum.fr import nir
from stdnum.gb import nhs
from stdnum.it import codicefiscale
from stdnum.nl import bsn

__all__ = ["VALIDATORS", "Validator", "digits_only", "luhn_valid"]

Validator = Callable[[str], bool]

_NON_DIGIT: Final = re.compile(r"\D")
_SEPARATOR: Final = re.compile(r"[\s./-]")
_NUMBER: Final = re.compile(r"\d+")
_B58: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BECH32: Final = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def digits_only(value: str) -> str:
    """The digits of a value, separators dropped."""
    return _NON_DIGIT.sub("", value)


# Each digit's Luhn value when it is doubled (the digits of 2d summed).
_DOUBLED: Final = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_valid(digits: str) -> bool:
    """What `stdnum.luhn.is_valid` says for a string of digits, without its generic
    alphabet lookups and exceptions (every card candidate is checked, several per message
    with a long number): the digits from the right, every second one doubled, sum to a
    multiple of ten; anything but ASCII digits (a digit of another script) is invalid."""
    if not digits.isascii() or not digits.isdigit():
        return False
    total = sum(map(int, digits[-1::-2]))
    total += sum(_DOUBLED[int(char)] for char in digits[-2::-2])
    return total % 10 == 0


def _luhn(value: str) -> bool:
    digits = digits_only(value)
    return len(set(digits)) > 1 and luhn_valid(digits)


def _iban(value: str) -> bool:
    return bool(iban.is_valid(value.upper()))


def _compact(value: str) -> str:
    """Upper case, separators (space, dot, dash, slash) dropped."""
    return _SEPARATOR.sub("", value).upper()


def _stdnum(module: object) -> Validator:
    """A python-stdnum `is_valid` on the compacted value, refusing one repeated digit
    ("000000000" passes several checksums and is never issued)."""
    check = module.is_valid  # type: ignore[attr-defined]

    def valid(value: str) -> bool:
        compact = _compact(value)
        return len(set(compact)) > 1 and bool(check(compact))

    return valid


# UK National Insurance number: two prefix letters (not D, F, I, Q, U, V; second not O;
# never BG, GB, KN, NK, NT, TN, ZZ), six digits, a suffix A-D (HMRC's published rules).
_NINO: Final = re.compile(r"(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]")


def _nino(value: str) -> bool:
    return _NINO.fullmatch(_compact(value)) is not None


def _spelled_email(value: str) -> bool:
    """A spelled-out address: bracketed at/dot, or at least "local at domain dot tld"
    (five words), and a last label of letters (a top-level domain)."""
    tld = re.split(r"[\s.\])}>]+", value.strip())[-1]
    if not (2 <= len(tld) <= 24 and tld.isalpha()):
        return False
    return any(c in value for c in "[({<") or len(value.split()) >= 5


def _date(value: str) -> bool:
    """A calendar date read day-month-year, month-day-year or year-month-day (2- or
    4-digit years): "123-45-6789" (an SSN) is no date in any order."""
    parts = [int(p) for p in _NUMBER.findall(value)]
    if len(parts) == 2:  # "14 March 1985": a day and a year around a month name
        day, year = parts
        return 1 <= day <= 31 and _is_date(1, 1, year)
    if len(parts) != 3:
        return False
    a, b, c = parts
    orders = ((a, b, c), (b, a, c), (c, b, a))  # (day, month, year)
    return any(_is_date(day, month, year) for day, month, year in orders)


def _is_date(day: int, month: int, year: int) -> bool:
    if year < 100:
        year += 1900 if year > 30 else 2000
    if not 1900 <= year <= 2100:
        return False
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


def _nhs(value: str) -> bool:
    digits = digits_only(value)
    return len(set(digits)) > 1 and bool(nhs.is_valid(digits))


def _ip(value: str) -> bool:
    octets = value.split(".")
    if len(octets) == 4 and all(o.isascii() and o.isdigit() for o in octets):
        # a dotted quad: `ipaddress`'s IPv4 rules (what it decides for these), without its
        # interpreted parser: at most three digits, no leading zero, at most 255
        return all(len(o) <= 3 and (o == "0" or o[0] != "0") and int(o) <= 255 for o in octets)
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


VALIDATORS: Final[Mapping[str, Validator]] = {
    "luhn": _luhn,
    "iban": _iban,
    "nhs": _nhs,
    "ip": _ip,
    "btc": _btc,
    "date": _date,
    "spelled_email": _spelled_email,
    "nino": _nino,
    "fr_nir": _stdnum(nir),
    "es_dni": _stdnum(dni),
    "es_nie": _stdnum(nie),
    "es_ccc": _stdnum(ccc),
    "it_fiscal_code": _stdnum(codicefiscale),
    "nl_bsn": _stdnum(bsn),
    "br_cpf": _stdnum(cpf),
    "br_cnpj": _stdnum(cnpj),
    "de_idnr": _stdnum(idnr),
}
