"""The webhook through the adapter pair, against the real app: what the bot sends comes
back to the channel unchanged (buttons, images, custom payloads), and any bot adapter
can stand behind the channel (the domain knows no protocol)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from gateway_helpers import Service, StubBot, make_settings

from coatcheck.grammar import parse_references
from coatcheck.middleware.app import create_app
from coatcheck.middleware.gateway import BotAnswer, BotReply, BotTurn, Button, ContextRule, Role
from coatcheck.middleware.gateway.services import services_of

EMAIL = "jane.doe@example.com"

RICH: list[dict[str, Any]] = [
    {"text": "Pick one", "buttons": [{"title": "Yes", "payload": "/affirm"}, {"title": "No"}]},
    {"image": "https://example.org/receipt.png"},
    {"custom": {"card": {"kind": "receipt", "total": 12}}},
    {"attachment": {"type": "file", "url": "https://example.org/a.pdf"}},
]


def test_rich_replies_reach_the_channel_unchanged(service: Service, stub_bot: StubBot) -> None:
    stub_bot.script = lambda payload: [{"recipient_id": payload["sender"], **i} for i in RICH]
    response = service.say("r1", f"hello {EMAIL}")
    assert response.status_code == 200
    assert response.json() == [{"recipient_id": "r1", **item} for item in RICH]


class ScriptedBot:
    """A bot adapter of no protocol at all: records turns, asks for a PIN next."""

    def __init__(self) -> None:
        self.turns: list[BotTurn] = []

    async def send(self, turn: BotTurn) -> BotAnswer:
        self.turns.append(turn)
        text = turn.user_part().text
        reply = BotReply(text=f"got: {text}", buttons=(Button("OK", "/ok"),))
        return BotAnswer((reply,), rule=ContextRule("PIN", "whole"))


def test_any_bot_adapter_can_answer(tmp_path: Path) -> None:
    bot = ScriptedBot()
    app = create_app(make_settings(tmp_path), bot=bot)
    with TestClient(app) as client:
        key = services_of(client.app.state).store.keys.create(Role.CHANNEL)  # type: ignore[attr-defined]
        headers = {"Authorization": f"Bearer {key}"}

        def say(text: str) -> Any:
            body = {"sender": "s1", "message": text}
            response = client.post("/webhooks/rest/webhook", json=body, headers=headers)
            assert response.status_code == 200, response.text
            return response.json()

        [first] = say(f"mail {EMAIL}")
        [second] = say("4711")
    sent = bot.turns[0].user_part()
    assert EMAIL not in sent.text and [e.type for e in sent.entities] == ["EMAIL_ADDRESS"]
    assert first == {
        "recipient_id": "s1",
        "text": f"got: {sent.text}",
        "buttons": [{"title": "OK", "payload": "/ok"}],
    }
    [pin] = parse_references(bot.turns[1].user_part().text)  # the rule the bot set applied
    assert pin.entity_type == "PIN" and "4711" not in second["text"]


def test_the_channel_language_hint_reaches_detection(
    service_factory: Callable[..., Service], stub_bot: StubBot, tmp_path: Path
) -> None:
    """Rasa's `metadata.language` goes to detection: with only en-US configured, a German
    mobile number in national form is a phone number only when the channel says de-DE."""
    config = tmp_path / "en-only.yml"
    config.write_text("detection: {locales: [en-US]}\n", encoding="utf-8")
    service = service_factory(bot_url=stub_bot.url, config=config)
    number = "0171 94028383"

    def sent(sender: str, metadata: dict[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"sender": sender, "message": f"ok {number} bis morgen"}
        if metadata is not None:
            body["metadata"] = metadata
        response = service.client.post(
            "/webhooks/rest/webhook", json=body, headers=service.auth(Role.CHANNEL)
        )
        assert response.status_code == 200, response.text
        return stub_bot.received[-1]

    assert number in sent("h1", None)["message"]  # no hint: no US plan reads it
    assert number in sent("h2", {"language": ["de-DE"]})["message"]  # not a hint
    hinted = sent("h3", {"language": "de-DE", "note": "x"})
    assert number not in hinted["message"]
    assert [e["type"] for e in hinted["metadata"]["coatcheck"]["entities"]] == ["PHONE_NUMBER"]
    assert set(hinted["metadata"]) == {"coatcheck"}  # the channel's metadata stays behind
