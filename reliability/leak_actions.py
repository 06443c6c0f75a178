"""The leak audit's action server: the example bot's actions plus one that hands revealed
values back in every shape a rasa-sdk action can (issue 19, finding 1).

    python -m rasa_sdk --actions reliability.leak_actions   (examples/rasa_bot on PYTHONPATH)

`action_reveal_shapes` opts in to the email address and phone number of the message that
triggered it and puts both into every dispatcher argument (text, a `response` with a
`name=` template variable, json payloads keyed by the value, tuples, image and attachment
URLs, buttons, elements, extra keywords, stream chunks closed and left open) and into
slot values, a bot event and a raw event. Re-tokenization must hand all of it to Rasa as
references; `shapes_revealed` (a count, no value) shows the values were really revealed.
The intent, rule, slots and response it needs are added to the example bot by
`reliability/leak.py` at training time.
"""

from __future__ import annotations

from typing import Any

from bot_actions import ActionConfirmContact, ActionResetContact, ActionSendReceipt
from rasa_sdk import Tracker
from rasa_sdk.events import BotUttered, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from coatcheck.actions import RevealedView, RevealingAction, reveals

__all__ = [
    "SHAPES_TYPES",
    "ActionConfirmContact",
    "ActionResetContact",
    "ActionRevealShapes",
    "ActionSendReceipt",
]

SHAPES_TYPES = ["EMAIL_ADDRESS", "PHONE_NUMBER"]


@reveals(*SHAPES_TYPES, purpose="leak audit")
class ActionRevealShapes(RevealingAction):
    """Every dispatcher argument and slot shape, holding the revealed values."""

    def name(self) -> str:
        return "action_reveal_shapes"

    async def run_revealed(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
        revealed: RevealedView,
    ) -> list[dict[str, Any]]:
        email = ", ".join(revealed.values("EMAIL_ADDRESS"))
        phone = ", ".join(revealed.values("PHONE_NUMBER"))
        dispatcher.utter_message(response="utter_shapes_receipt", name=email)
        dispatcher.utter_message(json_message={"customer": {"name": email, "phone": phone}})
        dispatcher.utter_message(image="https://cdn.example/qr?to=" + email)
        dispatcher.utter_message(json_message={email: 1, "t": (email, phone)})
        dispatcher.utter_message(
            text=f"mail {email}, call {phone}",
            buttons=[{"title": phone, "payload": '/inform{"email": "' + email + '"}'}],
            elements=[{"title": email, "subtitle": phone, "template": email}],
            attachment="https://cdn.example/card?for=" + phone,
            **{phone: "as a keyword"},
        )
        await dispatcher.stream_chunk(text=f"streamed {email}")
        await dispatcher.stream_end()
        await dispatcher.stream_chunk(text=f"left open {phone}")
        return [
            SlotSet("shapes_copy", email),
            SlotSet("shapes_contact", {"to": [email], phone: (phone, 7)}),
            BotUttered(text=f"noted {phone}", data={"elements": [{"name": email}]}),
            {"event": "slot", "name": "shapes_raw", "value": [email, phone], "timestamp": None},
            SlotSet("shapes_revealed", len(revealed.by_reference)),
        ]
