"""Chat with a model through coatcheck, using the official `openai` Python client.

coatcheck sits between the client and the model provider: every value it detects leaves
as a placeholder (`[EMAIL_1]`), and the answer comes back with this request's own values
restored; what the model adds of its own is redacted (docs/llm.md).  Only the base URL and
the key change for the client:

    coatcheck serve   # with COATCHECK_LLM_UPSTREAM_URL=https://api.openai.com/v1 and
                      # COATCHECK_LLM_UPSTREAM_API_KEY=<the provider's key>
    COATCHECK_URL=http://127.0.0.1:8000 COATCHECK_CHANNEL_KEY=cck_... \\
        python examples/openai_client/chat.py "Mail the invoice to jane.doe@example.com"

`COATCHECK_CONVERSATION` (optional) keeps placeholders and references stable across
calls (it becomes the `X-Coatcheck-Conversation` header); `COATCHECK_MODEL` picks the
model (default: the first the provider lists).
"""

from __future__ import annotations

import os
import sys

import openai
from openai import OpenAI


def client() -> OpenAI:
    base = os.environ.get("COATCHECK_URL", "http://127.0.0.1:8000").rstrip("/")
    return OpenAI(base_url=f"{base}/openai/v1", api_key=os.environ["COATCHECK_CHANNEL_KEY"])


def main(argv: list[str]) -> int:
    prompt = " ".join(argv) or "My e-mail is jane.doe@example.com; please confirm it."
    api = client()
    conversation = os.environ.get("COATCHECK_CONVERSATION")
    headers = {"X-Coatcheck-Conversation": conversation} if conversation else None
    try:
        model = os.environ.get("COATCHECK_MODEL") or api.models.list().data[0].id
        stream = api.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": prompt}],
            stream=True,
            extra_headers=headers,
        )
        for chunk in stream:
            for choice in chunk.choices:
                print(choice.delta.content or "", end="", flush=True)
        print()
    except openai.APIStatusError as exc:  # OpenAI's error shape: a status and a code
        print(f"error {exc.status_code}: {exc.code}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
