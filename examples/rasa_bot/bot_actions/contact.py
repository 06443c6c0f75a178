"""Actions around the contact form.

The slots hold references (``CC_EMAIL_ADDRESS_...``), never values.  The confirmation
prompt is a coatcheck directive: the gateway reveals the reference to the end user on the
channel leg only, so Rasa's tracker store and logs keep the reference.  Only
``action_send_receipt`` opts in to the real email address (allow-listed in coatcheck's
YAML), and it never stores or logs it.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from coatcheck.actions import RevealedView, RevealingAction, reveals, utter_confirmation

CONTACT_SLOTS = ("email", "phone", "pin")


class ActionConfirmContact(Action):  # type: ignore[misc]  # rasa_sdk is untyped
    """Ask the user to confirm the email address they gave, shown as their real value."""

    def name(self) -> str:
        return "action_confirm_contact"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        email = tracker.get_slot("email")
        utter_confirmation(dispatcher, f"You gave {email}, is that right?")
        return []


class ActionResetContact(Action):  # type: ignore[misc]
    """Clear the contact slots so the form asks again."""

    def name(self) -> str:
        return "action_reset_contact"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        return [SlotSet(slot, None) for slot in CONTACT_SLOTS]


def deliver_receipt(address: str) -> bool:
    """Stand-in for a mail backend: accepts only what looks like a real address.

    A reference reaching this function means the opt-in did not happen, which is exactly
    what the end-to-end run wants to notice.
    """
    return "@" in address and not address.startswith("CC_")


@reveals("EMAIL_ADDRESS", purpose="send receipt")
class ActionSendReceipt(RevealingAction):
    """Opt in to the real email address to hand it to the (stand-in) mail backend."""

    def name(self) -> str:
        return "action_send_receipt"

    async def run_revealed(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
        revealed: RevealedView,
    ) -> list[EventType]:
        sent = deliver_receipt(str(revealed.slot("email") or ""))
        dispatcher.utter_message(response="utter_receipt_sent" if sent else "utter_receipt_failed")
        return [SlotSet("receipt_sent", sent)]
