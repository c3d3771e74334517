"""Shared by the chat tests: a visitor's socket (a real `websockets` client), signed user tokens,
and an agent's reply through the outbox."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy import select
from websockets.sync.client import ClientConnection, connect

from shopkeeper import clock
from shopkeeper.auth.models import Workspace
from shopkeeper.channels.chat import service
from shopkeeper.channels.chat.tokens import identity_secret, user_token
from shopkeeper.customers.models import Identity
from shopkeeper.db.session import Database
from shopkeeper.messaging.models import Interaction, Send


def token_for(db: Database, workspace_id: str, user_id: str) -> str:
    """What the shop's own server computes for a signed-in user."""
    with db.session() as session:
        workspace = session.get(Workspace, workspace_id)
        assert workspace is not None
        return user_token(identity_secret(workspace), user_id)


def socket(base_url: str, **params: str) -> ClientConnection:
    url = base_url.replace("http://", "ws://", 1) + "/chat/ws"
    if params:
        url += "?" + urlencode(params)
    return connect(url, open_timeout=10, close_timeout=5)


def receive(ws: ClientConnection, timeout: float = 15) -> dict[str, Any]:
    frame = orjson.loads(ws.recv(timeout=timeout))
    assert isinstance(frame, dict)
    return frame


def receive_type(ws: ClientConnection, kind: str, timeout: float = 15) -> dict[str, Any]:
    """The next frame of this type (skipping others, such as echoes of one's own messages)."""
    while True:
        frame = receive(ws, timeout)
        if frame["type"] == kind:
            return frame


def say(ws: ClientConnection, **frame: Any) -> None:
    ws.send(orjson.dumps(frame).decode())


def customer_of(db: Database, workspace_id: str, kind: str, value: str) -> str:
    with db.session() as session:
        customer_id = session.scalar(
            select(Identity.customer_id).where(
                Identity.workspace_id == workspace_id, Identity.kind == kind, Identity.value == value
            )
        )
        assert customer_id is not None, f"no customer holds {kind}={value}"
        return customer_id


def reply(db: Database, workspace_id: str, customer_id: str, text: str) -> str:
    """An agent's chat reply, planned in the outbox (a delivery worker sends it)."""
    with db.session(write=True) as session:
        return service.send_chat(session, workspace_id, customer_id, text, clock.now()).id


def interaction(db: Database, interaction_id: str) -> Interaction:
    with db.session() as session:
        row = session.get(Interaction, interaction_id)
        assert row is not None
        return row


def send_of(db: Database, send_id: str) -> Send:
    with db.session() as session:
        row = session.get(Send, send_id)
        assert row is not None
        return row
