"""Actions loaded by the real rasa-sdk server in the live tests (`--actions cc_live_actions`).

They report only non-PII facts about what they saw (is it a reference? does it look like
the real thing?) plus an echo that must come back re-tokenized.
"""

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import BotUttered, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from coatcheck.actions import RevealedView, RevealingAction, is_reference, reveals
from coatcheck.actions.examples import ActionConfirmEmail, ActionSendReceipt, ValidatePaymentForm

__all__ = [
    "ActionCardLast4",
    "ActionConfirmEmail",
    "ActionGreedy",
    "ActionPeek",
    "ActionPlain",
    "ActionSendReceipt",
    "ActionShapes",
    "ValidatePaymentForm",
]


def _facts(value: Any) -> dict[str, Any]:
    return {
        "is_ref": is_reference(value),
        "has_at": isinstance(value, str) and "@" in value and not is_reference(value),
        "digits": sum(c.isdigit() for c in value) if isinstance(value, str) else 0,
    }


@reveals("EMAIL_ADDRESS", purpose="live test")
class ActionPeek(RevealingAction):
    """Opts in to EMAIL_ADDRESS only; a PHONE_NUMBER slot must stay a reference."""

    def name(self) -> str:
        return "action_peek"

    async def run_revealed(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
        revealed: RevealedView,
    ) -> list[dict[str, Any]]:
        email, phone = revealed.slot("email"), revealed.slot("phone")
        entity_values = [e.get("value") for e in revealed.entities]
        dispatcher.utter_message(text=f"Your address is {email}; call {phone}.")
        dispatcher.utter_message(json_message={"echo": email, "new": "write to new@example.org"})
        return [
            SlotSet("email_facts", _facts(email)),
            SlotSet("phone_facts", _facts(phone)),
            SlotSet("entity_facts", [_facts(v) for v in entity_values]),
            SlotSet("echo", email),
        ]


class ActionPlain(Action):
    """Does not opt in: sees references only."""

    def name(self) -> str:
        return "action_plain"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        return [SlotSet("email_facts", _facts(tracker.get_slot("email")))]


@reveals("EMAIL_ADDRESS", "PHONE_NUMBER", purpose="live test")
class ActionGreedy(ActionPeek):
    """Declares PHONE_NUMBER too, which the gateway's allow-list does not give it."""

    def name(self) -> str:
        return "action_greedy"


@reveals("EMAIL_ADDRESS", "PIN", purpose="live test")
class ActionShapes(RevealingAction):
    """Hands the revealed values back in every shape an action can (issue 19, finding 1).

    Slot `extra` (a list of names) adds shapes only an in-process run can carry: `set`
    (not JSON) and `object` (not re-tokenizable at all).
    """

    def name(self) -> str:
        return "action_shapes"

    async def run_revealed(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
        revealed: RevealedView,
    ) -> list[dict[str, Any]]:
        email, pin = revealed.slot("email"), revealed.slot("pin")
        extra = tracker.get_slot("extra") or []
        dispatcher.utter_message(response="utter_receipt", name=email)
        dispatcher.utter_message(json_message={"customer": {"name": email}})
        dispatcher.utter_message(image="https://cdn.example/qr?to=" + email)
        dispatcher.utter_message(json_message={email: 1, "t": (email,)})
        dispatcher.utter_message(
            text=f"mail {email}",
            buttons=[{"title": email, "payload": '/inform{"email": "' + email + '"}'}],
            elements=[{"title": email, "template": email, "event": email}],
            attachment=email,
            **{email: "as a keyword", "timestamp": email},
        )
        await dispatcher.stream_chunk(text=f"streamed {email}")
        await dispatcher.stream_end()
        await dispatcher.stream_chunk(text=f"left open {email}")  # never closed
        if "set" in extra:
            dispatcher.utter_message(json_message={"s": {email}, "f": frozenset({pin})})
        if "object" in extra:
            dispatcher.utter_message(json_message={"o": _Opaque(email)})
        return [
            SlotSet("email_copy", email),
            SlotSet("contact", {"to": [email], email: (email, 7), "pin": int(pin)}),
            BotUttered(text=email, data={"elements": [{"name": email}]}),
            {"event": "slot", "name": "raw_event", "value": [email], "timestamp": None},
        ]


class _Opaque:
    """Something an action should not return: it prints as the value."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __str__(self) -> str:
        return self.value


@reveals("CARD", "CARD_PIN", purpose="live test")
class ActionCardLast4(RevealingAction):
    """Derives `card_last4` from the card; the PIN of type CARD_PIN must not be taken for it."""

    def name(self) -> str:
        return "action_card_last4"

    async def run_revealed(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
        revealed: RevealedView,
    ) -> list[dict[str, Any]]:
        cards = revealed.values("CARD")
        return [SlotSet("card_last4", cards[-1][-4:]), SlotSet("cards_seen", len(cards))]
