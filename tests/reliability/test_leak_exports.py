"""The fast leak check for exports and the log viewer (the long one is `reliability.leak`).

Conversations carrying one unique canary of each of the six global types go through the
real app, with the export sinks wired: a JSONL file and a loopback webhook. Half of them
end (export at the end), half are exported by the admin route while still active. The
export config is set to deny nothing, so the whole record (every turn) leaves; then every
exported byte, and every /ui/ page a viewer can open, is searched for every canary: raw,
without separators, digits-only. Non-vacuity: one record per conversation at each sink,
and the records and pages hold references of every type.
"""

from __future__ import annotations

import json
from pathlib import Path

from rel_support import RecordingBot, running_app, running_receiver

from coatcheck.middleware.gateway.apikeys import Role
from reliability.harness import TYPES, Canaries, scan_hits


def test_exports_and_viewer_pages_hold_no_canary(tmp_path: Path, bot: RecordingBot) -> None:
    canaries = Canaries(seed=8)
    jsonl = tmp_path / "export.jsonl"
    convs = [f"lx{canaries.tag}-{i}" for i in range(6)]
    with running_receiver() as receiver:
        hook = {"webhook": receiver.url, "allow_private_network": True}  # on loopback
        sinks = {"export": {"sinks": [{"jsonl": str(jsonl)}, hook]}}
        with running_app(tmp_path, bot.url, sinks) as app:
            admin = app.auth(Role.ADMIN)
            whole = {"type": "deny", "fields": []}  # deny nothing: every field leaves
            put = app.client.put("/v1/config/export-redaction", json=whole, headers=admin)
            assert put.status_code == 200, put.text
            for i, conv in enumerate(convs):
                v = canaries.make(i)
                for text in (
                    f"my card is {v['CREDIT_CARD']} and my ssn is {v['US_SSN']}",
                    f"write to {v['EMAIL_ADDRESS']} or call {v['PHONE_NUMBER']}, iban "
                    f"{v['IBAN_CODE']}, I am at {v['IP_ADDRESS']}",
                ):
                    said = app.client.post(
                        "/webhooks/rest/webhook",
                        json={"sender": conv, "message": text},
                        headers=app.auth(Role.CHANNEL),
                    )
                    assert said.status_code == 200, said.text
            for i, conv in enumerate(convs):
                if i % 2:
                    done = app.client.post(
                        f"/v1/conversations/{conv}/end", headers=app.auth(Role.CHANNEL)
                    )
                else:
                    done = app.client.post(
                        f"/v1/conversations/{app.cid(conv)}/export", headers=admin
                    )
                    assert done.json()["delivered"] == 2
                assert done.status_code == 200, done.text

            app.ui_sign_in(Role.AUDITOR)  # the audit view is an auditor's
            paths = ["/ui/", "/ui/audit", *[f"/ui/conversations/{app.cid(c)}" for c in convs]]
            pages = [app.client.get(path) for path in paths]
            assert [page.status_code for page in pages] == [200] * len(paths)
            html = "\n".join(page.text for page in pages)
            ids = sorted(app.cid(c) for c in convs)  # conversations are kept by pseudonym

    records = [json.loads(line) for line in jsonl.read_text("utf-8").splitlines()]
    assert sorted(r["conversation_id"] for r in records) == ids
    assert sorted(r["conversation_id"] for r in receiver.received) == ids
    assert all(len(r["turns"]) == 4 for r in records)  # two said, two echoed by the bot
    exported = jsonl.read_text("utf-8") + json.dumps(receiver.received, ensure_ascii=False)
    assert [t for t in TYPES if f"CC_{t}_" not in exported] == []
    assert [t for t in TYPES if f"CC_{t}_" not in html] == []
    assert all(cid in html for cid in ids) and not any(conv in html for conv in convs)
    assert len(canaries.planted) == 36
    assert scan_hits(exported, canaries.planted) == {}
    assert scan_hits(html, canaries.planted) == {}
    assert scan_hits(json.dumps(bot.received), canaries.planted) == {}
