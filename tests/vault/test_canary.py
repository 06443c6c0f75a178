"""No planted value appears anywhere at rest: every table, every column, the raw files."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import Engine, inspect, select, table

from coatcheck.vault import ConversationShredded, Grant, Vault, predicate_from_dict
from tests.conftest import FakeClock


def _canaries() -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    digits = str(int(uuid.uuid4().int % 10**15)).zfill(15)
    return {
        "EMAIL": f"canary-{tag}@example.org",
        "PHONE": f"+1 ({digits[:3]}) {digits[3:6]}-{digits[6:10]}",
        "CREDIT_CARD": f"{digits[:4]} {digits[4:8]} {digits[8:12]} {digits[12:15]}9",
        "PASSWORD": f"pw-{tag}-Zz9",
    }


def _forms(value: str) -> set[str]:
    only_digits = re.sub(r"\D", "", value)
    return {value} | ({only_digits} if len(only_digits) >= 8 else set())


def test_no_canary_at_rest(vault: Vault, engine: Engine, clock: FakeClock, db_url: str) -> None:
    canaries = _canaries()
    refs = vault.tokenize_many("conv-a", list(canaries.items()))
    vault.tokenize_many("conv-b", list(canaries.items()))
    g = Grant("conv-a", frozenset(canaries), "p", "agent", clock.now + 30)
    for (_etype, value), ref in zip(canaries.items(), refs, strict=True):
        assert vault.reveal("conv-a", ref, g) == value
        assert vault.check(
            "conv-a", ref, predicate_from_dict({"op": "equals", "value": value}), "b", "p"
        )
    vault.rotate("admin")
    vault.shred("conv-a", "admin")
    try:
        vault.reveal("conv-a", refs[0], g)
    except ConversationShredded as exc:
        assert all(v not in str(exc) for v in canaries.values())

    needles = set().union(*(_forms(v) for v in canaries.values()))
    dump: list[str] = []
    with engine.connect() as conn:
        for name in inspect(conn).get_table_names():
            cols = [c["name"] for c in inspect(conn).get_columns(name)]
            for row in conn.execute(select(*(table(name, *[_c(c) for c in cols]).c))):
                dump.extend(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row)
    text = "\n".join(dump)
    assert len(dump) > 20  # the dump really covered the vault's rows
    assert [n for n in needles if n in text] == []
    if db_url.startswith("sqlite:///"):
        path = db_url.removeprefix("sqlite:///")
        raw = b""
        for suffix in ("", "-wal"):
            try:
                with open(path + suffix, "rb") as handle:
                    raw += handle.read()
            except FileNotFoundError:
                pass
        assert len(raw) > 4096
        assert [n for n in needles if n.encode() in raw] == []
        assert [n for n in needles if n.encode("utf-16-le") in raw] == []


def _c(name: str):  # type: ignore[no-untyped-def]
    from sqlalchemy import column

    return column(name)
