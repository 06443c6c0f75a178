"""Property tests: the grammar round-trips, defanged user text never parses, and no
detected value survives redaction."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from coatcheck.middleware.detect import Detector, TypeSettings, defang
from coatcheck.middleware.render import parse_references, render

TYPES = st.from_regex(r"[A-Z][A-Z0-9_]{0,15}", fullmatch=True)
IDS = st.from_regex(r"[0-9a-hjkmnp-tv-z]{10}", fullmatch=True)
FILLER = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30).map(defang)
DETECTOR = Detector.from_config({})


@given(st.lists(st.tuples(FILLER, TYPES, IDS, st.text(max_size=20)), max_size=5), FILLER)
def test_parse_finds_exactly_the_rendered(
    parts: list[tuple[str, str, str, str]], tail: str
) -> None:
    text, expected = "", []
    for filler, entity_type, ref_id, value in parts:
        # a separator keeps user filler from extending the type or the display
        text += filler + " "
        mode = TypeSettings(display="mask")
        text += render(entity_type, value, ref_id, mode) + " "
        expected.append((entity_type, ref_id))
    text += tail
    assert [(r.entity_type, r.ref_id) for r in parse_references(text)] == expected


@given(st.text(alphabet=st.sampled_from("CC_cAZ09k2m(x) _-"), max_size=60))
def test_defanged_text_never_parses(text: str) -> None:
    assert parse_references(defang(text)) == []


@given(st.lists(IDS, min_size=1, max_size=1), st.text(max_size=40))
def test_defanged_lookalike_of_real_reference(ids: list[str], noise: str) -> None:
    typed = f"{noise}CC_EMAIL_ADDRESS_{ids[0]}(abc){noise}"
    assert parse_references(defang(typed)) == []


VALUES = st.one_of(
    st.sampled_from(
        [
            "4111 1111 1111 1111",
            "a.b@example.com",
            "DE89 3704 0044 0532 0130 00",
            "(212) 456-7890",
            "192.168.10.1",
            "123-45-6780",
        ]
    ),
)


@settings(max_examples=60)
@given(st.lists(st.tuples(st.sampled_from([" hi ", " and ", ", then "]), VALUES), max_size=4))
def test_no_detected_value_survives(parts: list[tuple[str, str]]) -> None:
    text = "".join(a + b for a, b in parts)
    spans = DETECTOR.detect(text)
    out, last = [], 0
    for index, span in enumerate(spans):
        out.append(text[last : span.start])
        out.append(render(span.entity_type, span.value, f"{index:010d}", TypeSettings()))
        last = span.end
    out.append(text[last:])
    redacted = "".join(out)
    for _, value in parts:
        assert value not in redacted
