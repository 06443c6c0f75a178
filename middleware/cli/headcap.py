"""uvicorn's httptools protocol with a cap on the request head (request line + headers).

uvicorn bounds the head only with its h11 parser (`h11_max_incomplete_event_size`); with
httptools it reads a head of any size (8 MB went through to the app, before any
authentication).  h11 cost 0.3 ms per request at one connection here (c1 p50 2.10 vs
1.81 ms, 3 interleaved rounds of bench/gateway.py), so the gateway keeps httptools and
counts the bytes of a head itself: past `MAX_HEAD_BYTES` the client gets 431 and the
connection is closed.  What is buffered per connection stays below the cap plus one read
(asyncio reads at most 256 KiB at a time).

The count is taken after each chunk is parsed, from the parser's own callbacks (a message
begins, its headers complete), so a body in the same chunk as its head never counts.
"""

from __future__ import annotations

import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["MAX_HEAD_BYTES", "HeadCappedProtocol"]

MAX_HEAD_BYTES = 16 * 1024

log = logging.getLogger("uvicorn.error")

_MESSAGE = b"request head too large\n"
_RESPONSE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_MESSAGE)).encode("ascii") + b"\r\n"
    b"connection: close\r\n\r\n" + _MESSAGE
)


class HeadCappedProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` that answers 431 and closes once a head passes the cap."""

    _in_head = True  # a connection starts by waiting for a head
    _head_bytes = 0

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            log.warning("request head larger than %d bytes: refused (431)", MAX_HEAD_BYTES)
            self.transport.write(_RESPONSE)
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()
