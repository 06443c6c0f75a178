"""Reading a customer endpoint's answer with a size cap (values and tokens are small)."""

from __future__ import annotations

import aiohttp

__all__ = ["read_capped"]

_CHUNK = 16_384


async def read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body, or None once it exceeds `limit` bytes; reading stops there.

    A declared length over the cap is refused before reading; a chunked answer is read
    only up to the cap, so an endless or huge body costs at most `limit` bytes of memory.
    """
    if resp.content_length is not None and resp.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
