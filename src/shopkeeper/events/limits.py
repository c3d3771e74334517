"""Segment's documented limits, enforced before anything is parsed or stored."""

from __future__ import annotations

import zlib

from fastapi import Request

from shopkeeper.errors import Invalid, TooLarge

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The request body, refused as soon as it passes `limit` (gzip bodies are measured inflated)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"{what} is over the {limit // 1024} KB limit", field="body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"{what} is over the {limit // 1024} KB limit", field="body")
        chunks.append(chunk)
    body = b"".join(chunks)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(body, limit + 1)
        except zlib.error:
            raise Invalid("body: not valid gzip", field="body") from None
        if len(body) > limit or inflater.unconsumed_tail:
            raise TooLarge(f"{what} is over the {limit // 1024} KB limit", field="body")
    return body
