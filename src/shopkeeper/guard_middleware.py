"""Refuse, before any handler runs, input that no store can hold or that is too big to be sane.

PostgreSQL cannot store a NUL character in text or JSON (SQLite can, so without this guard the
two engines would disagree, and on PostgreSQL the request would fail deep in a transaction). A
NUL in the path or query, or a JSON `\\u0000` in a body, gets a clear 400 naming it. Admin request
bodies are capped at 1 MB. The tracking API (/v1) checks its bodies itself, event by event, so
that one bad event does not cost the rest of a batch.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_ADMIN_BODY = 1024 * 1024
NUL_MESSAGES = (b"\\u0000", b"\x00")


def has_nul(data: bytes) -> bool:
    return any(marker in data for marker in NUL_MESSAGES)


def _form_has_nul(scope: Scope, body: bytes) -> bool:
    """A URL-encoded form (the web UI's) hides a NUL as %00, which the byte check cannot see."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type" and value.startswith(b"application/x-www-form-urlencoded"):
            return b"\x00" in unquote_to_bytes(body.replace(b"+", b" "))
    return False


def nul_field(body: bytes) -> str:
    """The dotted path of the first JSON key or value holding a NUL, so the 400 names the field."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "body"
    found = _find_nul(document, [])
    return ".".join(found) if found else "body"


def _find_nul(value: object, path: list[str]) -> list[str] | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return [*path, key.replace("\x00", "\\u0000")]
            found = _find_nul(item, [*path, key])
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_nul(item, [*path, str(index)])
            if found is not None:
                return found
    return None


async def _refuse(send: Send, status: int, code: str, message: str, field: str) -> None:
    body = orjson.dumps({"error": {"code": code, "message": message, "field": field}})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class InputGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        if b"\x00" in unquote_to_bytes(raw_path) or b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
            await _refuse(send, 400, "invalid", "the URL contains a NUL character", "url")
            return
        if scope["path"].startswith("/v1/") or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return

        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_ADMIN_BODY:
                await _refuse(send, 413, "too_large", "the request body is over 1 MB", "body")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if _form_has_nul(scope, body):
            await _refuse(send, 400, "invalid", "a form field contains a NUL character, which cannot be stored", "body")
            return
        if has_nul(body):
            field = nul_field(body)
            await _refuse(
                send, 400, "invalid", f"{field} contains a NUL character (\\u0000), which cannot be stored", field
            )
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
