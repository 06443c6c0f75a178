"""Server-sent events: read the provider's `data:` events across any chunk boundary, write ours.

`SseDecoder.feed(bytes)` returns the `data` payloads of the events completed by those bytes
(multi-line data joined with "\n", as the WHATWG parser does); lines may end in CRLF, LF or
CR, split anywhere, even inside a UTF-8 sequence or between CR and LF. Comments, `event:`,
`id:` and `retry:` are dropped (the OpenAI protocol carries everything in `data`). Each new
byte is looked at once; a line or event longer than `max_event` characters is refused.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any

from coatcheck.middleware.llm.errors import UpstreamProtocolError

__all__ = ["DONE", "SseDecoder", "encode_event"]

DONE = b"data: [DONE]\n\n"
_BREAK = re.compile(r"\r\n|\r|\n")


def encode_event(payload: dict[str, Any]) -> bytes:
    """One `data:` event; JSON never holds a raw line break, so one line is enough."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return b"data: " + body.encode("utf-8") + b"\n\n"


class SseDecoder:
    """Incremental event-stream parser (data fields only)."""

    def __init__(self, max_event: int = 4 << 20) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self._line: list[str] = []
        self._line_len = 0
        self._data: list[str] = []
        self._data_len = 0
        self._after_cr = False
        self._max = max_event

    def feed(self, chunk: bytes) -> list[str]:
        try:
            text = self._utf8.decode(chunk)
        except UnicodeDecodeError:
            raise UpstreamProtocolError("invalid_utf8") from None
        return self._text(text)

    def finish(self) -> list[str]:
        """The stream ended: a last line without its break still counts, and an event
        without its blank line is dispatched (a provider that closes right after it)."""
        try:
            text = self._utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            raise UpstreamProtocolError("invalid_utf8") from None
        events = self._text(text)
        if self._line:
            self._end_line(events)
        self._dispatch(events)
        return events

    def _text(self, text: str) -> list[str]:
        events: list[str] = []
        pos = 0
        if self._after_cr and text.startswith("\n"):
            pos = 1  # the LF of a CRLF split across chunks
        if text:
            self._after_cr = False
        if "\r" not in text:
            self._lf_lines(text, pos, events)
            return events
        for brk in _BREAK.finditer(text, pos):
            self._append(text[pos : brk.start()])
            self._end_line(events)
            pos = brk.end()
        self._append(text[pos:])
        if text.endswith("\r"):
            self._after_cr = True
        return events

    def _lf_lines(self, text: str, pos: int, events: list[str]) -> None:
        """`_text` for text without CR (what providers send): one split in C, and each
        whole line handled in place (a provider's read holds hundreds of events)."""
        lines = (text[pos:] if pos else text).split("\n")
        data = self._data
        for line in lines[:-1]:
            if self._line:
                self._append(line)
                self._end_line(events)
                continue
            if not line:
                self._dispatch(events)
                continue
            if len(line) > self._max:
                raise UpstreamProtocolError("event_too_large")
            if line.startswith("data:"):
                value = line[6:] if line.startswith(" ", 5) else line[5:]
            elif line == "data":
                value = ""
            else:
                continue  # a comment, `event:`, `id:`, `retry:` or an unknown field
            data.append(value)
            self._data_len += len(value) + 1
            if self._data_len > self._max:
                raise UpstreamProtocolError("event_too_large")
        self._append(lines[-1])

    def _append(self, piece: str) -> None:
        if piece:
            self._line.append(piece)
            self._line_len += len(piece)
            if self._line_len > self._max:
                raise UpstreamProtocolError("event_too_large")

    def _end_line(self, events: list[str]) -> None:
        line = "".join(self._line)
        self._line.clear()
        self._line_len = 0
        if not line:
            self._dispatch(events)
            return
        if line.startswith(":"):
            return
        name, sep, value = line.partition(":")
        if name != "data":
            return
        if sep and value.startswith(" "):
            value = value[1:]
        self._data_line(value)

    def _data_line(self, value: str) -> None:
        self._data.append(value)
        self._data_len += len(value) + 1
        if self._data_len > self._max:
            raise UpstreamProtocolError("event_too_large")

    def _dispatch(self, events: list[str]) -> None:
        if self._data:
            events.append(self._data[0] if len(self._data) == 1 else "\n".join(self._data))
            self._data.clear()
            self._data_len = 0
