"""The example, run as a user runs it: the official `openai` client against a served
coatcheck, whose provider is the fake one on loopback (it echoes what it receives)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from coatcheck.middleware.gateway.apikeys import Role
from tests.harness import threaded
from tests.llm.fake_upstream import FakeUpstream, last_user_text
from tests.llm.served import served, settings_for

SCRIPT = Path(__file__).with_name("chat.py")
PROMPT = "Mail the invoice to jane.doe@example.com or call 212-555-0187."


def _run(url: str, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COATCHECK_URL": url, "COATCHECK_CHANNEL_KEY": key}
    env["COATCHECK_CONVERSATION"] = "example-1"
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_the_openai_client_gets_its_values_back_and_the_model_none(tmp_path: Path) -> None:
    fake = FakeUpstream(piece=3)
    with threaded(fake.app()) as upstream:
        settings = settings_for(f"sqlite:///{tmp_path / 'ex.db'}", tmp_path, upstream + "/v1")
        with served(settings) as gw:
            done = _run(gw.url, gw.keys[Role.CHANNEL], PROMPT)
            refused = _run(gw.url, "cck_000000000000_" + "A" * 43, PROMPT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == PROMPT  # the echo, values restored for this client
    [request] = fake.received
    assert last_user_text(request.body) == "Mail the invoice to [EMAIL_1] or call [PHONE_1]."
    assert "jane.doe" not in request.everything() and "555-0187" not in request.everything()
    assert refused.returncode == 1 and "error 401: unauthorized" in refused.stderr
