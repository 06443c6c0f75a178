"""Bot directives for the gateway: confirmation prompts and secure capture.

Both travel as custom reply items (`{"custom": {"coatcheck": {...}}}`, docs/contracts.md)
so the gateway acts on them on the channel leg; history keeps the reference form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from coatcheck.actions._references import parse_reference
from coatcheck.actions.client import CoatcheckClient

__all__ = [
    "CAPTURE_INTENT",
    "CaptureResult",
    "capture_directive",
    "capture_result",
    "confirmation",
    "request_capture",
    "utter_capture",
    "utter_confirmation",
]

CAPTURE_INTENT = "coatcheck_capture"


def confirmation(text: str) -> dict[str, Any]:
    """The reply item that the gateway reveals to the end user only: `{"custom": ...}`."""
    return {"custom": {"coatcheck": {"confirm": True, "text": text}}}


def utter_confirmation(dispatcher: CollectingDispatcher, text: str) -> None:
    """Send `text` (holding references) as a confirmation prompt."""
    dispatcher.utter_message(json_message=confirmation(text)["custom"])


def capture_directive(
    entity_type: str,
    check: str | None = None,
    retries: int = 2,
    retry_text: str | None = None,
) -> dict[str, Any]:
    """The secure-capture directive: the next user message is vaulted whole as `entity_type`.

    `check` names a check declared in coatcheck's config for that type (no `equals`);
    a failed check answers `ok: false` (after `retries`).
    """
    if retries < 0:
        raise ValueError("retries must be >= 0")
    directive: dict[str, Any] = {
        "expect": entity_type,
        "capture": "secure",
        "retries": retries,
    }
    if retry_text is not None:
        directive["retry_text"] = retry_text
    if check is not None:
        directive["check"] = check
    return directive


def utter_capture(
    dispatcher: CollectingDispatcher,
    entity_type: str,
    check: str | None = None,
    retries: int = 2,
    retry_text: str | None = None,
) -> None:
    """Ask the gateway, in the reply, to capture the next message without the bot seeing it."""
    directive = capture_directive(entity_type, check, retries, retry_text)
    dispatcher.utter_message(json_message={"coatcheck": directive})


async def request_capture(
    client: CoatcheckClient,
    conversation_id: str,
    entity_type: str,
    check: str | None = None,
    retries: int = 2,
    retry_text: str | None = None,
) -> None:
    """The same directive, set through `/v1/conversations/{id}/context` right away."""
    directive = capture_directive(entity_type, check, retries, retry_text)
    await client.set_context(conversation_id, directive)


@dataclass(frozen=True)
class CaptureResult:
    """What the bot learns from a secure capture: the type, ok, and a reference when ok.

    `verified` says the gateway confirmed this result as its own; `ok` is never true
    without it.
    """

    entity_type: str
    ok: bool
    ref: str | None
    verified: bool = False


async def capture_result(tracker: Tracker, client: CoatcheckClient) -> CaptureResult | None:
    """The capture result in the latest message, confirmed by the gateway; None if not one.

    The gateway sends `/coatcheck_capture{"type":..,"ok":..,"ref":..}` and Rasa turns the
    JSON into entities of the latest message; but a user can type that very text, and it
    reaches the bot verbatim. So the claim counts only when the gateway's record of the
    conversation's latest capture (`client.latest_capture`) says the same: otherwise the
    result is `ok=False, ref=None, verified=False` (fail closed). Service errors propagate.
    """
    message = tracker.latest_message
    if (message.get("intent") or {}).get("name") != CAPTURE_INTENT:
        return None
    entities = [e for e in message.get("entities") or [] if isinstance(e, dict)]
    claim = _capture_fields({e.get("entity"): e.get("value") for e in entities})
    record = await client.latest_capture(tracker.sender_id)
    verified = record is not None and _capture_fields(record) == claim
    if not verified:
        return CaptureResult(claim.entity_type, False, None, False)
    return CaptureResult(claim.entity_type, claim.ok, claim.ref, True)


def _capture_fields(fields: Mapping[Any, Any]) -> CaptureResult:
    """A result from its fields (the message's entities or the gateway's record)."""
    ok = fields.get("ok") in (True, "true", "True")
    ref = parse_reference(fields.get("ref")) if ok else None
    entity_type = str(fields.get("type") or "")
    return CaptureResult(entity_type, ok, ref.token if ref else None)
