"""Example actions: an opted-in email action, a checking form validator, a confirmation.

Load with `python -m rasa_sdk --actions actions.examples`. `send_receipt` stands in for a
backend call that needs the real address; it keeps only a count, never the value.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from coatcheck.actions.checks import accepts_reference, check_slot
from coatcheck.actions.client import CoatcheckClient
from coatcheck.actions.prompts import utter_confirmation
from coatcheck.actions.reveal import RevealedView, RevealingAction, reveals

__all__ = [
    "ActionConfirmEmail",
    "ActionSendReceipt",
    "ValidatePaymentForm",
    "send_receipt",
    "sent_receipts",
]

sent_receipts: list[int] = []


def send_receipt(address: str) -> bool:
    """A fake backend: accepts a real address (it must contain "@"), records only a count."""
    ok = "@" in address and not address.startswith("CC_")
    sent_receipts.append(1 if ok else 0)
    return ok


@reveals("EMAIL_ADDRESS", purpose="send receipt")
class ActionSendReceipt(RevealingAction):
    """Opts in to EMAIL_ADDRESS: the backend gets the real value, the bot a reference."""

    def name(self) -> str:
        return "action_send_receipt"

    async def run_revealed(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
        revealed: RevealedView,
    ) -> list[dict[str, Any]]:
        address = revealed.slot("email")
        if not isinstance(address, str) or not send_receipt(address):
            dispatcher.utter_message(text="I could not send the receipt.")
            return [SlotSet("receipt_sent", False)]
        # The real value in the reply and the slot is re-tokenized before it leaves.
        dispatcher.utter_message(text=f"Receipt sent to {address}.")
        return [SlotSet("receipt_sent", True), SlotSet("receipt_to", address)]


class ValidatePaymentForm(FormValidationAction):  # type: ignore[misc]
    """Checks a card number inside the vault; the form sees only the reference and a flag."""

    def name(self) -> str:
        return "validate_payment_form"

    async def validate_card_number(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        async with CoatcheckClient.from_env() as client:
            # `card_luhn`: declared in coatcheck's config (config/coatcheck.example.yaml)
            return await check_slot(
                client, tracker, "card_number", value, "card_luhn", "card_valid"
            )

    @accepts_reference("EMAIL_ADDRESS")
    def validate_email(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        """Without opting in: a reference is accepted, other text must look like an email."""
        return {"email": value if isinstance(value, str) and "@" in value else None}


class ActionConfirmEmail(Action):  # type: ignore[misc]
    """Asks the user to confirm their own address; only the channel leg sees the value."""

    def name(self) -> str:
        return "action_confirm_email"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        email = tracker.get_slot("email")
        utter_confirmation(dispatcher, f"You gave {email}, is that right?")
        return []
