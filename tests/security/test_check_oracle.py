"""Issue 14, finding 1: `/v1/check` was a query language, so a bot key rebuilt a card.

The attack: a `bot` key asks regexes of its own about the reference of a card a user gave,
binary-searching each character (~80 calls for a 19-character card on the code before
this change, every one answered 200).  Now no predicate text comes from a request: the
old form is refused, a caller names a check the operator declared, and each reference
has a budget of checks (all callers together) whose refusals are audited.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from coatcheck.middleware.gateway.apikeys import Role
from tests.security.live import Gateway, live_gateway

CARD = "4539 1488 0343 6467"
CHARSET = "0123456789 -"
BUDGET = 4
Ask = Callable[[str], bool | None]

# What main accepts too: no declared checks, so the old request form is all a bot has.
PLAIN: dict[str, object] = {}
DECLARED = {
    "checks": {
        "budget_per_reference": BUDGET,
        "declared": {
            "card_luhn": {"type": "CREDIT_CARD", "op": "luhn"},
            "card_is": {"type": "CREDIT_CARD", "op": "equals"},
        },
    }
}


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with live_gateway(tmp_path_factory.mktemp("plain"), PLAIN) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def declared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with live_gateway(tmp_path_factory.mktemp("declared"), DECLARED) as gateway:
        yield gateway


def card_reference(gateway: Gateway, conversation: str) -> str:
    """The user gives a card on the channel leg (which names the conversation by its real
    id); the bot sees only its reference, under the pseudonym (`gateway.cid`)."""
    body = {"text": f"my card is {CARD}", "conversation_id": conversation}
    response = gateway.post("/v1/redact", body, Role.CHANNEL)
    assert response.status_code == 200, response.text
    (entity,) = response.json()["entities"]
    assert entity["type"] == "CREDIT_CARD"
    return str(entity["ref"])


def regex_oracle(
    gateway: Gateway, conversation: str, ref: str, role: Role
) -> tuple[Ask, list[int]]:
    """The old request form: `{"predicate": {"op": "regex", "pattern": ...}}`; True, False,
    or None when the gateway does not answer the question."""
    statuses: list[int] = []

    def ask(pattern: str) -> bool | None:
        body = {
            "conversation_id": conversation,
            "ref": ref,
            "predicate": {"op": "regex", "pattern": pattern},
        }
        response = gateway.post("/v1/check", body, role)
        statuses.append(response.status_code)
        return bool(response.json()["result"]) if response.status_code == 200 else None

    return ask, statuses


def binary_search(ask: Ask, limit: int = 24) -> str:
    """Rebuild the value one character at a time, halving the charset per question."""
    known = ""
    for _ in range(limit):
        if ask(re.escape(known)):
            return known  # the whole value
        candidates = CHARSET
        while len(candidates) > 1:
            half = candidates[: len(candidates) // 2]
            answer = ask(f"{re.escape(known)}[{re.escape(half)}].*")
            if answer is None:
                return known  # refused: nothing more to learn
            candidates = half if answer else candidates[len(half) :]
        known += candidates
    return known


@pytest.mark.parametrize("role", [Role.BOT, Role.ACTION_SERVER])
def test_binary_search_with_the_old_api_recovers_nothing(plain: Gateway, role: Role) -> None:
    ref = card_reference(plain, f"victim-{role.value}")
    conversation = plain.cid(f"victim-{role.value}")
    ask, statuses = regex_oracle(plain, conversation, ref, role)
    recovered = binary_search(ask)
    assert recovered == ""  # before: the whole card, in ~80 calls
    assert statuses and all(status == 422 for status in statuses)


def test_declared_checks_are_budgeted_per_reference_and_audited(declared: Gateway) -> None:
    """Guessing with the one check that takes an operand: `BUDGET` answers, then refusals
    (for every caller: the budget is the reference's), each one audited."""
    ref = card_reference(declared, "victim-equals")
    conversation = declared.cid("victim-equals")
    answers = []
    for guess in range(12):
        role = Role.BOT if guess % 2 else Role.ACTION_SERVER
        body = {"conversation_id": conversation, "ref": ref, "check": "card_is"}
        response = declared.post(
            "/v1/check", {**body, "value": f"4539 1488 0343 64{guess:02d}"}, role
        )
        answers.append((response.status_code, response.json()))
    assert [status for status, _ in answers] == [200] * BUDGET + [403] * (12 - BUDGET)
    assert all(body == {"result": False} for _, body in answers[:BUDGET])
    assert all(body["error"] == "check_budget" for _, body in answers[BUDGET:])
    luhn = {"conversation_id": conversation, "ref": ref, "check": "card_luhn"}
    assert declared.post("/v1/check", luhn, Role.BOT).status_code == 403  # spent for all
    rows = declared.audit(conversation, "check")
    outcomes = sorted(row.outcome for row in rows)
    assert outcomes == ["ok"] * BUDGET + ["refused:check_budget"] * (13 - BUDGET)
    assert {row.purpose for row in rows if row.outcome == "ok"} == {"check:card_is"}
    digits = CARD.replace(" ", "")
    assert all(CARD not in repr(row) and digits not in repr(row) for row in rows)


def test_no_predicate_text_is_taken_from_a_request(declared: Gateway) -> None:
    """The old form, a pattern where a name belongs, a name never declared: refused."""
    ref = card_reference(declared, "victim-forms")
    conversation = declared.cid("victim-forms")
    base = {"conversation_id": conversation, "ref": ref}
    bodies = [
        ({**base, "predicate": {"op": "regex", "pattern": "4.*"}}, 422, "invalid_request"),
        ({**base, "check": "4.*"}, 422, "invalid_request"),
        ({**base, "check": "card_regex"}, 422, "unknown_check"),
        ({**base, "check": "card_luhn", "value": "4.*"}, 422, "bad_text"),
    ]
    for body, status, code in bodies:
        response = declared.post("/v1/check", body, Role.BOT)
        assert (response.status_code, response.json()["error"]) == (status, code)
    refused = [row.outcome for row in declared.audit(conversation, "check")]
    assert sorted(refused) == ["refused:operand", "refused:unknown_check"]
