"""Table-driven: street addresses (ADDRESS) by pattern, and the switch that turns them on."""

from __future__ import annotations

import pytest

from coatcheck.middleware.detect import Detector

DETECTOR = Detector.from_config({"detection": {"addresses": True}})

# (text, expected ADDRESS substrings)
ROWS: list[tuple[str, list[str]]] = [
    # number first, street type last (US/UK), optional unit
    ("I live at 221B Baker Street, Apt 4 in London", ["221B Baker Street, Apt 4"]),
    ("ship to 1600 Pennsylvania Ave NW", ["1600 Pennsylvania Ave"]),
    ("office: 42 Old Mill Rd. Suite 300", ["42 Old Mill Rd. Suite 300"]),
    ("meet at 55 A. Diakou Street tonight", ["55 A. Diakou Street"]),
    # street word first, number last
    ("send it to Via Tasso 129 please", ["Via Tasso 129"]),
    ("Rue de la Paix 12, Paris", ["Rue de la Paix 12"]),
    ("ul. Słowicza 10", ["ul. Słowicza 10"]),
    # one word ending in a street suffix
    ("Heirstraat 58, 9000 Gent", ["Heirstraat 58, 9000 Gent"]),
    ("Östbygatan 36", ["Östbygatan 36"]),
    # units and boxes alone
    ("it's Apt. 482", ["Apt. 482"]),
    ("P.O. Box 149", ["P.O. Box 149"]),
    # no match: counts, dates, titles, versions, products
    ("I have 3 Main concerns", []),
    ("see 3 Dr. Smith at 10", []),
    ("During 1987 we moved", []),
    ("Spring 2020 collection", []),
    ("upgrade to Windows 10", []),
    ("order 12345 shipped", []),
    ("Baker Street is lovely", []),
]


@pytest.mark.parametrize(("text", "expected"), ROWS)
def test_address_patterns(text: str, expected: list[str]) -> None:
    found = [text[s.start : s.end] for s in DETECTOR.detect(text) if s.entity_type == "ADDRESS"]
    assert found == expected


@pytest.mark.parametrize(
    ("detection", "on"),
    [({}, True), ({"addresses": True}, True), ({"addresses": False}, False)],
)
def test_addresses_switch(detection: dict[str, bool], on: bool) -> None:
    detector = Detector.from_config({"detection": detection})
    types = [s.entity_type for s in detector.detect("I live at 12 Main Street")]
    assert types == (["ADDRESS"] if on else [])


def test_address_loses_to_validated_pattern() -> None:
    text = "card 4111 1111 1111 1111 Street"
    types = [s.entity_type for s in DETECTOR.detect(text)]
    assert "CREDIT_CARD" in types
