"""Actions loaded by the real rasa-sdk server in the live tests (`--actions cc_live_actions`).

They report only non-PII facts about what they saw (is it a reference? does it look like
the real thing?) plus an echo that must come back re-tokenized.
"""

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from coatcheck.actions import RevealedView, RevealingAction, is_reference, reveals
from coatcheck.actions.examples import ActionConfirmEmail, ActionSendReceipt, ValidatePaymentForm

__all__ = [
    "ActionConfirmEmail",
    "ActionGreedy",
    "ActionPeek",
    "ActionPlain",
    "ActionSendReceipt",
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
