"""User text that Rasa would read as an intent: what the channel leg refuses.

Rasa treats a message that starts with `/` as a hard-coded NLU result: `/name` is the
intent `name`, and a JSON object after it (`/name{"k": "v"}`) becomes the message's
entities, decoded by `json.loads`.  Two things follow for a filter that scans text:

- **coatcheck's own intents.** The gateway tells the bot a secure capture's outcome as
  `/coatcheck_capture{...}` (`CAPTURE_INTENT`).  A user who types that text would speak
  for the gateway, so every intent in coatcheck's namespace (`coatcheck_`, compared
  case-folded, NFKC, zero-width characters dropped) is refused from the channel.
- **JSON escapes.** In `{"email": "jane\\u0040example.com"}` the detector scans
  `\\u0040` while the bot's entity holds `@`; `\\u0043C_` hides a reference look-alike
  from the defang the same way.  An intent payload holding any backslash is refused, so
  the text scanned is, character for character, the text Rasa decodes (a payload without
  escapes decodes to its own characters).  Payloads without escapes (a button's
  `/choose{"size": "large"}`) pass and are scanned like any other text.

Refusing rather than rewriting keeps the message as typed (a secure capture vaults the
whole message, and neutralising must never change a stored value).
"""

from __future__ import annotations

import re
import unicodedata

from coatcheck.middleware.gateway.errors import ImitatesGateway

__all__ = ["RESERVED_INTENT_PREFIX", "screen_intent"]

RESERVED_INTENT_PREFIX = "coatcheck_"
# Rasa's own split of `/intent@confidence{entities}rest`: the intent runs to `{` or `@`.
_INTENT = re.compile(r"\s*/(?P<intent>[^{@]*)(?P<rest>.*)", re.DOTALL)
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e]")


def _folded(name: str) -> str:
    """An intent name as a reader would compare it: NFKC, no zero-width, case-folded."""
    return _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", name)).strip().casefold()


def screen_intent(message: str) -> None:
    """Raise `ImitatesGateway` when `message` is an intent the channel may not send."""
    match = _INTENT.match(message)
    if match is None:
        return
    if _folded(match["intent"]).startswith(RESERVED_INTENT_PREFIX):
        raise ImitatesGateway("message", "intents named coatcheck_* come from coatcheck only")
    rest = match["rest"]
    payload = rest[rest.find("{") :] if "{" in rest else ""
    if "\\" in payload:
        raise ImitatesGateway("message", "an intent payload may not hold JSON escapes")
