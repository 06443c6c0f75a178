"""The reply filter's scan, table-driven: which strings of a bot reply hold values, and
that a reference the bot already holds (even in a `mask` display) is never a value."""

from __future__ import annotations

from typing import Any

import pytest

from coatcheck.middleware.config import build_detector, load_config
from coatcheck.middleware.gateway.reply_filter import ReplyFilter, map_reply, reply_strings
from coatcheck.middleware.gateway.turns import BotReply, Button
from coatcheck.middleware.pipeline import Redactor

EMAIL = "crm.lookup@example.org"
MASKED_CARD = "CC_CREDIT_CARD_0123456789(4111_1111_1111_####)"


class _NoVault:
    def tokenize_many(self, *args: Any, **kwargs: Any) -> list[str]:
        raise AssertionError("find() never vaults")


@pytest.fixture(scope="module")
def scan() -> ReplyFilter:
    config = load_config(None).detect_config()
    return ReplyFilter(Redactor(build_detector(config), _NoVault(), config))


@pytest.mark.parametrize(
    ("reply", "types"),
    [
        (BotReply(text=f"mail {EMAIL}"), ["EMAIL_ADDRESS"]),
        (BotReply(buttons=(Button("Call", "/call +1 415 555 0142"),)), ["PHONE_NUMBER"]),
        (BotReply(custom={"rows": [{"iban": "DE89 3704 0044 0532 0130 00"}]}), ["IBAN_CODE"]),
        (BotReply(extras={"attachment": {"src": f"https://x.example/{EMAIL}"}}), ["EMAIL_ADDRESS"]),
        (BotReply(text=f"your card {MASKED_CARD} is on file"), []),  # a reference: no value
        (BotReply(text="Thanks, that is all."), []),  # no match
        (BotReply(text="Order 12 ships in 3 days.", custom={"n": 12}), []),  # no match
    ],
)
def test_what_the_scan_finds(scan: ReplyFilter, reply: BotReply, types: list[str]) -> None:
    found = scan.find((reply,))
    assert [t for t, _ in found.items()] == types


def test_the_renderer_swaps_values_in_every_field(scan: ReplyFilter) -> None:
    reply = BotReply(
        text=f"mail {EMAIL}",
        buttons=(Button(EMAIL, f"/pick {EMAIL}", {"k": EMAIL}),),
        custom={"to": [EMAIL]},
    )
    found = scan.find((reply,))
    swap = scan.renderer(found, ["abcdefghjk"] * len(found.items()))
    masked = map_reply(reply, swap)
    assert all(EMAIL not in text for text in reply_strings(masked))
    assert masked.text is not None and masked.text.startswith("mail CC_EMAIL_ADDRESS_abcdefghjk")
    assert masked.buttons[0].extras == {"k": masked.buttons[0].title}


class _CountingDetector:
    """The real detector, counting the texts it is asked about."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.texts: list[str] = []

    def detect(self, text: str, *args: Any, **kwargs: Any) -> Any:
        self.texts.append(text)
        return self.real.detect(text, *args, **kwargs)


def test_a_template_reply_is_detected_once_a_reply_with_values_every_time() -> None:
    config = load_config(None).detect_config()
    counting = _CountingDetector(build_detector(config))
    scan = ReplyFilter(Redactor(counting, _NoVault(), config))  # type: ignore[arg-type]
    template = BotReply(text="Thanks, noted.")
    with_value = BotReply(text=f"Your agent is {EMAIL}.")
    for _ in range(3):
        assert scan.find((template,)).spans == {}
        assert list(scan.find((with_value,)).spans) == [with_value.text]
    assert counting.texts == ["Thanks, noted.", with_value.text, with_value.text, with_value.text]
