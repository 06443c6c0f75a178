"""Custom actions of the example bot, served by rasa-sdk from coatcheck's venv.

The package is not called ``actions`` because that name is coatcheck's own rasa-sdk library.
"""

from bot_actions.contact import ActionConfirmContact, ActionResetContact, ActionSendReceipt

__all__ = ["ActionConfirmContact", "ActionResetContact", "ActionSendReceipt"]
