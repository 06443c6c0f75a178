"""presidio recognizers as plug-ins: by name and from the user's YAML, lazily imported,
joined through the same overlap resolution."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from coatcheck.middleware.detect import ConfigError, Detector


def test_predefined_recognizer_by_name() -> None:
    detector = Detector.from_config(
        {"detection": {"locales": ["en-US"], "presidio": {"recognizers": ["UkNinoRecognizer"]}}}
    )
    [span] = detector.detect("my nino is AB 12 34 56 C")
    assert span.entity_type == "UK_NINO"
    assert span.rule == "presidio:UkNinoRecognizer"


def test_yaml_recognizer_and_gate(tmp_path: Path) -> None:
    path = tmp_path / "recognizers.yaml"
    path.write_text(
        "recognizers:\n"
        "  - name: EmployeeIdRecognizer\n"
        "    supported_language: en\n"
        "    supported_entity: EMPLOYEE_ID\n"
        "    patterns:\n"
        "      - name: employee id\n"
        "        regex: 'EMP-\\d{6}'\n"
        "        score: 0.8\n",
        encoding="utf-8",
    )
    detector = Detector.from_config({"detection": {"presidio": {"yaml": str(path)}}})
    spans = detector.detect("badge EMP-123456, mail a@b.co")
    assert [(s.entity_type, s.rule) for s in spans] == [
        ("EMPLOYEE_ID", "presidio:EmployeeIdRecognizer"),
        ("EMAIL_ADDRESS", "EMAIL_ADDRESS"),
    ]
    assert detector.detect("nothing to see") == []


def test_builtin_wins_a_tie_with_presidio_on_the_same_type() -> None:
    detector = Detector.from_config(
        {"detection": {"presidio": {"recognizers": ["EmailRecognizer"]}}}
    )
    [span] = detector.detect("mail ann@example.org")
    assert span.rule == "EMAIL_ADDRESS"


@pytest.mark.parametrize(
    ("presidio", "field"),
    [
        ({"recognizers": ["NoSuchRecognizer"]}, "detection.presidio.recognizers.0"),
        ({"yaml": "/nonexistent/recognizers.yaml"}, "detection.presidio.yaml"),
        ({"min_score": 2}, "detection.presidio.min_score"),
    ],
)
def test_bad_presidio_config_names_the_field(presidio: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Detector.from_config({"detection": {"presidio": presidio}})
    assert info.value.name == field


def test_presidio_is_not_imported_unless_configured() -> None:
    code = (
        "import sys\n"
        "from coatcheck.middleware.detect import Detector\n"
        "Detector.from_config({}).detect('card 4111 1111 1111 1111')\n"
        "print('presidio_analyzer' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
