"""Client load with unique canaries, and the after-the-fact checks shared by the scripts."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from reliability.harness import ACTION, TYPES, Canaries, Cluster, RecordingBot


@dataclass
class Sent:
    seq: int
    conversation: str
    marker: str
    values: dict[str, str]
    status: int  # 0: no HTTP answer (connection dropped)
    body: str = ""


@dataclass
class Load:
    cluster: Cluster
    canaries: Canaries
    conversations: int
    prefix: str
    sent: list[Sent] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: int = 0
    # compact values per conversation, registered before each send (the bot may see a
    # message before the client has its answer)
    planned: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def message(self, seq: int) -> tuple[str, str, dict[str, str], str]:
        values = self.canaries.make(seq)
        conv = f"{self.prefix}-{seq % self.conversations}"
        marker = f"mk{self.canaries.tag}n{seq}z"
        text = (
            f"{marker} mail {values['EMAIL_ADDRESS']} call {values['PHONE_NUMBER']} "
            f"card {values['CREDIT_CARD']} ssn {values['US_SSN']} "
            f"iban {values['IBAN_CODE']} from {values['IP_ADDRESS']}"
        )
        return conv, text, values, marker

    def _next(self, limit: int, keep_going: threading.Event | None, cap: int) -> int | None:
        """The next sequence number: up to `limit`, more while `keep_going` is set (a
        killer still at work), never `cap` or more."""
        with self.lock:
            seq = self.counter
            busy = keep_going is not None and keep_going.is_set()
            if seq >= cap or (seq >= limit and not busy):
                return None
            self.counter += 1
            return seq

    def worker(self, limit: int, keep_going: threading.Event | None, cap: int) -> None:
        headers = {"Authorization": f"Bearer {self.cluster.keys['channel']}"}
        limits = httpx.Limits(max_keepalive_connections=0)  # new connection each: both workers
        with httpx.Client(headers=headers, timeout=30, limits=limits) as client:
            while (seq := self._next(limit, keep_going, cap)) is not None:
                conv, text, values, marker = self.message(seq)
                with self.lock:
                    self.planned[conv].update(_compact(v) for v in values.values())
                try:
                    r = client.post(
                        f"{self.cluster.url}/webhooks/rest/webhook",
                        json={"sender": conv, "message": text},
                    )
                    status, body = r.status_code, r.text
                except httpx.HTTPError:
                    status, body = 0, ""
                with self.lock:
                    self.sent.append(Sent(seq, conv, marker, values, status, body))

    def run(
        self,
        total: int,
        threads: int,
        keep_going: threading.Event | None = None,
        cap: int | None = None,
    ) -> None:
        """Messages up to number `total` over `threads` clients (more while `keep_going` is
        set, up to `cap`, by default 20x `total`)."""
        limit = cap if cap is not None else 20 * total
        pool = [
            threading.Thread(target=self.worker, args=(total, keep_going, limit))
            for _ in range(threads)
        ]
        for t in pool:
            t.start()
        for t in pool:
            t.join(900)


def check_history(cluster: Cluster, sent: list[Sent]) -> list[int]:
    """Sequence numbers of 2xx messages missing from their conversation's history."""
    headers = {"Authorization": f"Bearer {cluster.keys['viewer']}"}
    by_conv: dict[str, str] = {}
    missing = []
    with httpx.Client(headers=headers, timeout=30) as client:
        for s in sent:
            if not 200 <= s.status < 300:
                continue
            if s.conversation not in by_conv:
                r = client.post(  # conversations are kept by the sender's pseudonym
                    f"{cluster.url}/v1/senders/history", json={"sender": s.conversation}
                )
                r.raise_for_status()
                by_conv[s.conversation] = " ".join(m["text"] for m in r.json()["messages"])
            if s.marker not in by_conv[s.conversation]:
                missing.append(s.seq)
    return missing


def forwarded_refs(bot: RecordingBot) -> dict[str, set[str]]:
    refs: dict[str, set[str]] = defaultdict(set)
    with bot.lock:
        payloads = list(bot.received)
    for p in payloads:
        for entity in p.get("metadata", {}).get("coatcheck", {}).get("entities", []):
            refs[p["sender"]].add(entity["ref"])
    return refs


def reveal_all(
    cluster: Cluster,
    refs: dict[str, set[str]],
    planted_by_conv: dict[str, set[str]],
    on_each: Callable[[], None] | None = None,
) -> tuple[int, list[tuple[str, str, int]]]:
    """Reveal every forwarded reference with a grant; (revealed, failures)."""
    headers = {"Authorization": f"Bearer {cluster.keys['action-server']}"}
    revealed = 0
    failures: list[tuple[str, str, int]] = []
    with httpx.Client(headers=headers, timeout=30) as client:
        for conv, conv_refs in sorted(refs.items()):
            g = client.post(
                f"{cluster.url}/v1/grants",
                json={"conversation_id": conv, "entity_types": TYPES, "purpose": "reliability",
                      "action": ACTION},
            )  # fmt: skip
            g.raise_for_status()
            grant = g.json()["grant"]
            for ref in sorted(conv_refs):
                r = client.post(
                    f"{cluster.url}/v1/reveal",
                    json={"conversation_id": conv, "ref": ref, "grant": grant},
                )
                value: Any = r.json().get("value") if r.status_code == 200 else None
                if value is None or _compact(value) not in planted_by_conv.get(conv, set()):
                    failures.append((conv, ref, r.status_code))
                else:
                    revealed += 1
                if on_each is not None:
                    on_each()
    return revealed, failures


def _compact(value: str) -> str:
    return value.replace(" ", "").lower()


def planted_by_conversation(cluster: Cluster, sent: list[Sent]) -> dict[str, set[str]]:
    """Compact forms of the values sent in each conversation (what a reveal must return),
    by conversation id: the sender's pseudonym, as the bot and the action server name it."""
    out: dict[str, set[str]] = defaultdict(set)
    for s in sent:
        out[cluster.pseudonym(s.conversation)].update(_compact(v) for v in s.values.values())
    return out
