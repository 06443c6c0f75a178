"""Issue 14, finding 3: a regex that backtracks stalled every request of the worker.

The attacks: a user types 25 digits and an `x` where a customer's pattern such as
`(\\d+\\s?)+` waits (a custom type on every message, a secure capture's check), and a bot
asks `(a*)*b` about a 24-character value.  Python's `re` backtracks for seconds holding
the GIL, and `/health` waited with it.  Now config patterns run on RE2 (linear) or, with
lookaround, on `regex` with a time limit per match; the bot cannot send a pattern at all.

The bound is a denial-of-service bound (`/health` answers within 1 s while the attack
runs), not a benchmark.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from coatcheck.middleware.gateway.apikeys import Role
from tests.security.live import Gateway, live_gateway

# seconds for /health while the attack runs: main waited 5.6 s (the bot's `(a*)*b`) and
# 17.4 s (25 digits and an x); 0.5 s was met but for one probe at 0.502 s on this shared
# 2-core machine under load, so the bound leaves room for the machine, not the attack.
BOUND = 1.0
DIGITS = "1" * 25 + "x"
AS = "a" * 24

# What main accepts too: a custom type whose pattern backtracks on digits.
PLAIN = {"custom_types": [{"name": "ORDER_NO", "regex": r"(\d+\s?)+#"}]}
DECLARED = {
    "checks": {
        "budget_per_reference": 50,
        "declared": {
            "pin_groups": {"type": "CARD_PIN", "op": "regex", "pattern": r"(\d+\s?)+"},
            "secret_as": {"type": "PASSWORD", "op": "regex", "pattern": r"(a*)*b"},
            "secret_look": {"type": "PASSWORD", "op": "regex", "pattern": r"(?=a)(a|aa)+b"},
        },
    }
}


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with live_gateway(tmp_path_factory.mktemp("redos-plain"), PLAIN) as gateway:
        warm_up(gateway)
        yield gateway


@pytest.fixture(scope="module")
def declared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with live_gateway(tmp_path_factory.mktemp("redos-declared"), DECLARED) as gateway:
        warm_up(gateway)
        yield gateway


def warm_up(gateway: Gateway) -> None:
    """One ordinary message first: a worker's first turn loads detection's tables, which
    is no attack and not what the bound is about."""
    assert gateway.say("warm-up", "hello, order 12 34 and call 555 0100").status_code == 200


def health_during(
    gateway: Gateway, attack: Callable[[], httpx.Response]
) -> tuple[float, list[httpx.Response]]:
    """The slowest of a few `/health` probes while 2 attacks run at once; their answers."""
    with ThreadPoolExecutor(2) as pool:
        running = [pool.submit(attack) for _ in range(2)]
        time.sleep(0.05)
        slowest = 0.0
        for _ in range(3):
            started = time.monotonic()
            assert httpx.get(f"{gateway.url}/health", timeout=60).status_code == 200
            slowest = max(slowest, time.monotonic() - started)
        return slowest, [future.result() for future in running]


def secret(gateway: Gateway, conversation: str, value: str) -> str:
    """`value` vaulted whole as a PASSWORD on the channel leg (by the real id); its
    reference (the bot names the conversation by `gateway.cid`)."""
    body = {
        "text": value,
        "conversation_id": conversation,
        "context": {"expect": "PASSWORD", "capture": "whole"},
    }
    response = gateway.post("/v1/redact", body, Role.CHANNEL)
    assert response.status_code == 200, response.text
    return str(response.json()["entities"][0]["ref"])


def test_user_digits_against_a_custom_type(plain: Gateway) -> None:
    latency, answers = health_during(plain, lambda: plain.say("user-digits", DIGITS))
    assert latency < BOUND
    assert all(answer.status_code == 200 for answer in answers)


def test_a_bot_pattern_of_its_own(plain: Gateway) -> None:
    """The old request form carried the bot's own pattern: refused before any matching."""
    ref = secret(plain, "bot-pattern", AS)
    body = {
        "conversation_id": plain.cid("bot-pattern"),
        "ref": ref,
        "predicate": {"op": "regex", "pattern": "(a*)*b"},
    }
    latency, answers = health_during(plain, lambda: plain.post("/v1/check", body, Role.BOT))
    assert latency < BOUND
    assert all(answer.status_code == 422 for answer in answers)


@pytest.mark.parametrize("check", ["secret_as", "secret_look"])
def test_declared_backtracking_checks(declared: Gateway, check: str) -> None:
    """RE2 for `(a*)*b`; the lookaround one on `regex`, cut at its time limit (False)."""
    ref = secret(declared, f"declared-{check}", AS)
    conversation = declared.cid(f"declared-{check}")
    body = {"conversation_id": conversation, "ref": ref, "check": check}
    latency, answers = health_during(declared, lambda: declared.post("/v1/check", body, Role.BOT))
    assert latency < BOUND
    assert [answer.json() for answer in answers] == [{"result": False}] * 2


def test_user_digits_against_a_secure_capture_check(declared: Gateway) -> None:
    """The bot asks for a PIN checked by `(\\d+\\s?)+`; the user types 25 digits and an x."""

    def attack() -> httpx.Response:
        sender = f"capture-{time.monotonic_ns()}"
        rule = {"expect": "CARD_PIN", "capture": "secure", "check": "pin_groups"}
        path = f"/v1/conversations/{declared.cid(sender)}/context"
        ruled = declared.post(path, rule, Role.BOT)
        assert ruled.status_code == 200, ruled.text
        return declared.say(sender, DIGITS)

    latency, answers = health_during(declared, attack)
    assert latency < BOUND
    for answer in answers:
        assert answer.status_code == 200, answer.text
        (reply,) = answer.json()  # the echo bot repeats the capture result it was sent
        assert reply["text"].startswith("/coatcheck_capture")
        assert json.loads(reply["text"][len("/coatcheck_capture") :])["ok"] is False
        assert DIGITS not in answer.text
