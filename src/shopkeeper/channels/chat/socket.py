"""The visitor's WebSocket (`/chat/ws`) and the widget script (`/chat/widget.js`).

Protocol (JSON text frames; docs/web-chat.md has the whole of it):

- The page authenticates with the write key and either `user_id` + `user_token` or an
  `anonymous_id`: as query parameters, or in a first frame `{"type": "hello", ...}` (which keeps
  the user token out of URLs and logs). A refusal closes the socket with 4400 (bad request), 4401
  (bad key or token) or 4403 (origin not allowed, or an anonymous id that has signed in), the
  reason saying why; 4408 when no hello came in time.
- The server answers `{"type": "ready", "history": [...]}` and then pushes
  `{"type": "message", "message": {...}}` as messages arrive.
- `{"type": "message", "text": ..., "client_id": ...}` from the visitor is stored and only then
  acknowledged with `{"type": "stored", "client_id": ..., "message": {...}}` (the interaction).
- `{"type": "delivered" | "read", "ids": [...]}` move outbound sends to delivered / opened.
- `{"type": "ping"}` → `{"type": "pong"}`; a bad frame gets `{"type": "error", ...}`, not a close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from shopkeeper import clock
from shopkeeper.channels.chat import service
from shopkeeper.channels.chat.hub import ChatHub, hub
from shopkeeper.channels.chat.visitors import Claims, Visitor, identify, known, resolve, workspace_for_key
from shopkeeper.customers.service import canonical
from shopkeeper.errors import Forbidden, Invalid, ShopkeeperError, Unauthorized
from shopkeeper.runtime import Runtime

log = logging.getLogger(__name__)
router = APIRouter(tags=["chat"])
WIDGET = Path(__file__).parent / "static" / "widget.js"
HELLO_SECONDS = 10.0
MAX_FRAME = 16 * 1024
# Per socket: a burst of 10 messages, then one every half second.
BURST, REFILL_PER_SECOND = 10.0, 2.0


def close_code(exc: ShopkeeperError) -> int:
    if isinstance(exc, Unauthorized):
        return 4401
    if isinstance(exc, Forbidden):
        return 4403
    return 4400


@router.get("/chat/widget.js", include_in_schema=False)
def widget_js() -> FileResponse:
    return FileResponse(
        WIDGET,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _claims(values: dict[str, Any], origin: str | None) -> Claims:
    return Claims(
        write_key=_text(values.get("write_key")),
        user_id=_text(values.get("user_id")),
        user_token=_text(values.get("user_token")),
        anonymous_id=_text(values.get("anonymous_id")),
        origin=origin,
    )


def _open(runtime: Runtime, claims: Claims) -> tuple[Visitor, str | None]:
    workspace_id = workspace_for_key(runtime.keys, claims.write_key)
    with runtime.db.session() as session:
        visitor = identify(session, workspace_id, claims)
        settled, customer_id = known(session, visitor)
    if settled:
        return visitor, customer_id
    with runtime.db.session(write=True) as session:  # ids to link (e.g. signing in): as an event would
        customer_id = resolve(session, visitor, clock.now(), create=False, trigger="chat:connect")
    return visitor, customer_id


def _history(runtime: Runtime, workspace_id: str, customer_id: str | None) -> list[dict[str, Any]]:
    if customer_id is None:
        return []
    with runtime.db.session() as session:
        return [service.message_json(i) for i in service.history(session, workspace_id, customer_id)]


def _store(
    runtime: Runtime, visitor: Visitor, customer_id: str | None, frame: dict[str, Any], agent: str | None
) -> tuple[str, dict[str, Any], bool]:
    now = clock.now()
    with runtime.db.session(write=True) as session:
        if customer_id is None:
            customer_id = resolve(session, visitor, now, create=True, trigger="chat:message")
            assert customer_id is not None
        else:
            customer_id = canonical(session, visitor.workspace_id, customer_id).id
        interaction, created = service.store_inbound(
            session,
            visitor,
            customer_id,
            frame.get("text"),  # type: ignore[arg-type]  # checked by store_inbound
            now,
            client_id=frame.get("client_id"),
            page_url=_text(frame.get("page_url")),
            user_agent=agent,
        )
        payload = service.message_json(interaction)
    return customer_id, payload, created


def _receipt(runtime: Runtime, visitor: Visitor, customer_id: str, ids: list[Any], status: str) -> int:
    with runtime.db.session(write=True) as session:
        return service.receipt(session, visitor.workspace_id, customer_id, ids, status, clock.now())


class Connection:
    """One open socket: its outgoing queue (filled from any thread), the ids it has shown."""

    def __init__(self, websocket: WebSocket, runtime: Runtime, visitor: Visitor, chat_hub: ChatHub) -> None:
        self.websocket = websocket
        self.runtime = runtime
        self.visitor = visitor
        self.hub = chat_hub
        self.customer_id: str | None = None
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._shown: set[str] = set()
        self._shown_order: deque[str] = deque()
        self._tokens = BURST
        self._refilled = time.monotonic()

    # -- from the hub (any thread) -------------------------------------------------------------
    def deliver(self, payload: dict[str, Any]) -> None:
        frame = {"type": "message", "message": payload}
        with contextlib.suppress(RuntimeError):  # the loop closed: the socket is gone anyway
            self.loop.call_soon_threadsafe(self.queue.put_nowait, frame)

    def attach(self, customer_id: str) -> None:
        if self.customer_id is None:
            self.customer_id = customer_id
            self.hub.add(self.visitor.workspace_id, customer_id, self)

    def detach(self) -> None:
        if self.customer_id is not None:
            self.hub.remove(self.visitor.workspace_id, self.customer_id, self)

    def _remember(self, interaction_id: str) -> bool:
        """True the first time an id is seen (a bounded memory of what this socket showed)."""
        if interaction_id in self._shown:
            return False
        self._shown.add(interaction_id)
        self._shown_order.append(interaction_id)
        if len(self._shown_order) > 5000:
            self._shown.discard(self._shown_order.popleft())
        return True

    async def writer(self) -> None:
        while True:
            frame = await self.queue.get()
            message = frame.get("message")
            if frame["type"] == "message" and isinstance(message, dict):
                if not self._remember(str(message.get("id"))):
                    continue
            elif frame["type"] == "stored":
                self._remember(str(frame["message"]["id"]))
            await self.websocket.send_text(orjson.dumps(frame).decode())

    def say(self, frame: dict[str, Any]) -> None:
        self.queue.put_nowait(frame)

    def _allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(BURST, self._tokens + (now - self._refilled) * REFILL_PER_SECOND)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    # -- from the visitor ----------------------------------------------------------------------
    async def handle(self, raw: str) -> None:
        if len(raw) > MAX_FRAME:
            raise Invalid(f"frame: over {MAX_FRAME // 1024} KB", field="frame")
        try:
            frame = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise Invalid("frame: not JSON", field="frame") from None
        if not isinstance(frame, dict):
            raise Invalid("frame: a JSON object with a type", field="frame")
        kind = frame.get("type")
        if kind == "ping":
            self.say({"type": "pong"})
        elif kind == "message":
            if not self._allow():
                raise Invalid("text: too many messages; wait a moment", field="text")
            agent = self.websocket.headers.get("user-agent")
            customer_id, payload, created = await run_in_threadpool(
                _store, self.runtime, self.visitor, self.customer_id, frame, agent
            )
            self.attach(customer_id)
            self.say({"type": "stored", "client_id": frame.get("client_id"), "message": payload})
            if created:  # the visitor's other tabs, here and in other processes
                self.hub.publish(self.visitor.workspace_id, customer_id, payload)
                self.hub.announce(self.visitor.workspace_id, customer_id, payload["id"])
        elif kind in ("delivered", "read"):
            ids = frame.get("ids")
            if not isinstance(ids, list):
                raise Invalid("ids: a list of message ids", field="ids")
            if self.customer_id is not None and ids:
                status = "opened" if kind == "read" else "delivered"
                await run_in_threadpool(_receipt, self.runtime, self.visitor, self.customer_id, ids, status)
        else:
            raise Invalid("type: one of message, delivered, read, ping", field="type")

    async def run(self, history: list[dict[str, Any]]) -> None:
        for item in history:
            self._remember(item["id"])
        await self.websocket.send_text(
            orjson.dumps({"type": "ready", "verified": self.visitor.verified, "history": history}).decode()
        )
        writer = asyncio.create_task(self.writer())
        try:
            while True:
                raw = await self.websocket.receive_text()
                try:
                    await self.handle(raw)
                except ShopkeeperError as exc:
                    self.say({"type": "error", **exc.as_dict()})
                except Exception:  # the store failed (e.g. the database is away): say so, stay open
                    log.exception("chat: a frame could not be handled")
                    self.say({"type": "error", "code": "internal", "message": "try again shortly", "field": None})
        except WebSocketDisconnect:
            pass
        finally:
            self.detach()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer


async def _hello(websocket: WebSocket) -> dict[str, Any]:
    params = dict(websocket.query_params)
    if "write_key" in params:
        return params
    try:
        raw = await asyncio.wait_for(websocket.receive_text(), HELLO_SECONDS)
    except TimeoutError:
        raise _Timeout from None
    try:
        frame = orjson.loads(raw) if len(raw) <= MAX_FRAME else None
    except orjson.JSONDecodeError:
        frame = None
    if not isinstance(frame, dict) or frame.get("type") != "hello":
        raise Invalid('hello: the first frame must be {"type": "hello", "write_key": ...}', field="type")
    return frame


class _Timeout(Exception):
    pass


@router.websocket("/chat/ws")
async def chat_socket(websocket: WebSocket) -> None:
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()  # first, so that a refusal can say why (a close code and reason)
    try:
        claims = _claims(await _hello(websocket), websocket.headers.get("origin"))
        visitor, customer_id = await run_in_threadpool(_open, runtime, claims)
    except ShopkeeperError as exc:
        # A close reason is at most 123 bytes of UTF-8.
        await websocket.close(code=close_code(exc), reason=exc.message.encode()[:120].decode(errors="ignore"))
        return
    except _Timeout:
        await websocket.close(code=4408, reason="no hello frame within 10 seconds")
        return
    except WebSocketDisconnect:
        return
    connection = Connection(websocket, runtime, visitor, hub)
    if customer_id is not None:
        # Listening before reading the history: a message committed after the read is published
        # after it too, so it arrives live; one committed before is in the history.
        connection.attach(customer_id)
    try:
        history = await run_in_threadpool(_history, runtime, visitor.workspace_id, customer_id)
    except BaseException:
        connection.detach()
        raise
    await connection.run(history)
