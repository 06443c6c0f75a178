"""The e2e driver's own checks must be able to fail: canaries are valid, the scanner finds."""

from __future__ import annotations

import random
import re
import sqlite3
from pathlib import Path

import pytest

from e2e.drive import Report, _luhn_complete, make_canaries, scan_text, sqlite_dump


def _luhn_ok(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [("7992739871", "79927398713"), ("411111111111111", "4111111111111111"), ("0", "00")],
)
def test_luhn_complete(prefix: str, expected: str) -> None:
    assert _luhn_complete(prefix) == expected


@pytest.mark.parametrize("index", range(4))
def test_canaries_are_valid_and_distinct(index: int) -> None:
    c = make_canaries(random.Random(index), index)
    assert _luhn_ok(re.sub(r"\D", "", c.card))
    assert re.fullmatch(r"[1-6]\d\d-\d\d-\d{4}", c.ssn)
    assert re.fullmatch(r"[1-9]{8}", c.pin)
    assert re.fullmatch(r"canary\.[a-z]{8}\d+@example\.org", c.email)
    forms = c.forms()
    assert forms.get("card:digits", forms["card:raw"]) == re.sub(r"\D", "", c.card)
    assert forms["ssn:digits"] == c.ssn.replace("-", "")
    assert forms["phone:national"].startswith("415")


@pytest.mark.parametrize(
    ("text", "hits"),
    [
        ("user said Canary.X@Example.org", 1),  # case-insensitive
        ("digits 4155550123 in a log", 1),
        ("both canary.x@example.org and 4155550123", 2),
        ("CC_EMAIL_ADDRESS_7k2m9xq4cw and 415555012", 0),  # no match
        ("", 0),
    ],
)
def test_scan_text(text: str, hits: int) -> None:
    report = Report()
    forms = {"email:raw": "canary.x@example.org", "phone:national": "4155550123"}
    assert scan_text("t", text, forms, report) == hits
    assert len(report.leaks) == hits


def test_sqlite_dump_reads_every_table(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE a (x TEXT)")
        conn.execute("CREATE TABLE b (y INTEGER, z BLOB)")
        conn.execute("INSERT INTO a VALUES ('canary.x@example.org')")
        conn.execute("INSERT INTO b VALUES (4155550123, x'00')")
    dump = sqlite_dump(db)
    assert "canary.x@example.org" in dump
    assert "4155550123" in dump
