"""Property tests the detect/render suites do not have yet: normalisation offsets on any
Unicode, detection on any Unicode, obfuscated canaries, every display mode, token parsing."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from coatcheck.middleware.detect import Detector
from coatcheck.middleware.detect.config import MaskSettings, TypeSettings
from coatcheck.middleware.detect.normalise import defang, normalise
from coatcheck.middleware.render import REFERENCE_RE, parse_references
from coatcheck.middleware.render.display import render

DETECTOR = Detector.from_config()
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
IDS = st.text(alphabet="0123456789abcdefghjkmnpqrstvwxyz", min_size=10, max_size=10)
TYPES = st.from_regex(r"[A-Z][A-Z0-9_]{0,20}", fullmatch=True)
ANY_TEXT = st.text(max_size=120)


@settings(max_examples=300)
@given(ANY_TEXT)
def test_normalise_offsets_stay_in_the_original(text: str) -> None:
    norm = normalise(text)
    assert "".join(c for c in norm.text if c in ZERO_WIDTH) == ""
    for start in range(len(norm.text)):
        for end in (start, start + 1, len(norm.text)):
            a, b = norm.span(start, end)
            assert 0 <= a <= b <= len(text)
    if norm.origin is not None:
        assert list(norm.origin) == sorted(norm.origin)  # monotone: spans never cross


@settings(max_examples=300)
@given(ANY_TEXT)
def test_normalise_is_idempotent_on_its_output(text: str) -> None:
    once = normalise(text).text
    assert normalise(once).text == unicodedata.normalize("NFKC", once)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_detection_on_any_text(text: str) -> None:
    spans = DETECTOR.detect(text)
    last_end = 0
    for span in sorted(spans, key=lambda s: s.start):
        assert 0 <= span.start < span.end <= len(text)
        assert span.start >= last_end, "overlapping spans survived resolution"
        last_end = span.end
        assert span.value not in repr(span) or len(span.value) < 3


FULLWIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}


@settings(max_examples=200, deadline=None)
@given(
    local=st.from_regex(r"[a-z]{3,10}", fullmatch=True),
    number=st.integers(min_value=2_000_000, max_value=9_999_999),
    noise=st.lists(st.sampled_from(ZERO_WIDTH), max_size=3),
    wide=st.booleans(),
    before=st.sampled_from(["", "hi ", "mail: ", "x\n"]),
)
def test_obfuscated_canaries_are_found_where_typed(
    local: str, number: int, noise: list[str], wide: bool, before: str
) -> None:
    email = f"{local}.cc@example.com"
    digits = f"415{number}"
    phone = "".join(FULLWIDTH[d] for d in digits) if wide else digits
    # zero-width characters planted inside the values
    email_typed = email[:2] + "".join(noise) + email[2:]
    phone_typed = phone[:3] + "".join(noise) + phone[3:]
    text = f"{before}{email_typed} or +1 {phone_typed} thanks"
    spans = {s.entity_type: s for s in DETECTOR.detect(text)}
    assert "EMAIL_ADDRESS" in spans and spans["EMAIL_ADDRESS"].value == email
    got = text[spans["EMAIL_ADDRESS"].start : spans["EMAIL_ADDRESS"].end]
    assert got == email_typed
    assert "PHONE_NUMBER" in spans
    typed = text[spans["PHONE_NUMBER"].start : spans["PHONE_NUMBER"].end]
    assert phone_typed in typed  # the whole typed number is covered, nothing left behind
    assert "".join(c for c in normalise(typed).text if c.isdigit()).endswith(digits)


@given(
    value=st.text(min_size=1, max_size=60),
    entity_type=TYPES,
    ref_id=IDS,
    display=st.sampled_from(["redaction", "replacement", "mask"]),
    first=st.integers(0, 64),
    last=st.integers(0, 64),
    symbol=st.sampled_from(["+", "#"]),
    replacement=st.from_regex(r"[!-'*-~]{1,20}", fullmatch=True),
)
def test_every_display_mode_renders_a_parseable_reference(
    value: str,
    entity_type: str,
    ref_id: str,
    display: str,
    first: int,
    last: int,
    symbol: str,
    replacement: str,
) -> None:
    ts = TypeSettings(
        display=display,  # type: ignore[arg-type]
        mask=MaskSettings(first=first, last=last, symbol=symbol),  # type: ignore[arg-type]
        replacement=replacement,  # a replacement display needs its string (config rule)
    )
    rendered = render(entity_type, value, ref_id, ts)
    match = REFERENCE_RE.fullmatch(rendered)
    assert match is not None
    assert (match.group(1), match.group(2)) == (entity_type, ref_id)
    if display == "redaction" and "@" in value:
        assert value not in rendered
    if display == "mask" and first + last >= len(value):
        assert set(match.group(3) or "") <= {symbol}  # fully masked: nothing of the value


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_parsing_any_text(text: str) -> None:
    for ref in parse_references(text):
        assert REFERENCE_RE.fullmatch(text[ref.start : ref.end])
        assert text[ref.start : ref.end].startswith(f"CC_{ref.entity_type}_{ref.ref_id}")
    assert parse_references(defang(text)) == []
    assert len(defang(text)) == len(text)
