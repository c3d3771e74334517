"""SPEC §5 web chat against a real `shopkeeper serve` process, with a real WebSocket client: who
may connect, a visitor's message stored before it is acknowledged, an agent's reply arriving
live, history replayed after being offline. (A reply from a worker in another process:
test_socket_split_live.py.)"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select
from websockets.exceptions import ConnectionClosed

from shopkeeper.db.session import Database
from shopkeeper.messaging.models import Interaction
from tests.channels.chat.helpers import (
    customer_of,
    interaction,
    receive,
    receive_type,
    reply,
    say,
    send_of,
    socket,
    token_for,
)
from tests.conftest import LiveServer, WorkspaceKeys


@pytest.fixture
def db_url(module_db_url: str) -> str:
    """The tests here share one database and one server, each in a workspace of its own."""
    return module_db_url


@pytest.fixture
def live_server(shared_live_server: LiveServer) -> LiveServer:
    return shared_live_server


def closed_with(ws_call: object) -> ConnectionClosed:
    with pytest.raises(ConnectionClosed) as caught:
        for _ in range(3):
            receive(ws_call)  # type: ignore[arg-type]
    return caught.value


def test_a_bad_write_key_is_refused_with_a_clear_close_code(live_server: LiveServer) -> None:
    with socket(live_server.url, write_key="wk_not-a-key", anonymous_id="anon-x") as ws:
        closed = closed_with(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 4401
    assert "not valid" in closed.rcvd.reason


def test_a_secret_key_is_not_a_write_key(live_server: LiveServer, workspace: WorkspaceKeys) -> None:
    with socket(live_server.url, write_key=workspace.secret_key, anonymous_id="anon-x") as ws:
        closed = closed_with(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 4403
    assert "write key" in closed.rcvd.reason


def test_a_tampered_or_missing_user_token_is_refused(
    live_server: LiveServer, workspace: WorkspaceKeys, db: Database
) -> None:
    good = token_for(db, workspace.id, "user-42")
    tampered = ("0" if good[0] != "0" else "1") + good[1:]
    for params in (
        {"user_id": "user-42", "user_token": tampered},
        {"user_id": "user-43", "user_token": good},  # another user's token
        {"user_id": "user-42"},
    ):
        with socket(live_server.url, write_key=workspace.write_key, **params) as ws:
            closed = closed_with(ws)
        assert closed.rcvd is not None and closed.rcvd.code == 4401, params
        assert "user_token" in closed.rcvd.reason
    with socket(live_server.url, write_key=workspace.write_key, user_id="user-42", user_token=good) as ws:
        assert receive(ws) == {"type": "ready", "verified": True, "history": []}


def test_a_visitor_message_is_stored_before_it_is_acknowledged(
    live_server: LiveServer, workspace: WorkspaceKeys, db: Database
) -> None:
    with socket(live_server.url, write_key=workspace.write_key, anonymous_id="anon-stored") as ws:
        assert receive(ws)["type"] == "ready"
        say(ws, type="message", text="  Where is my order?  ", client_id="c-1", page_url="https://shop.test/o/7")
        ack = receive_type(ws, "stored")
        assert ack["client_id"] == "c-1"
        stored = interaction(db, ack["message"]["id"])  # committed when the ack was sent
        assert (stored.channel, stored.direction, stored.text) == ("chat", "in", "Where is my order?")
        assert stored.address == "anon-stored" and stored.data["page_url"] == "https://shop.test/o/7"
        assert stored.customer_id == customer_of(db, workspace.id, "anonymous_id", "anon-stored")

        # The same client id again (the widget retrying after a lost ack) is stored once.
        say(ws, type="message", text="Where is my order?", client_id="c-1")
        assert receive_type(ws, "stored")["message"]["id"] == stored.id
        # Bad frames get an error frame; the socket stays open.
        ws.send("not json")
        assert receive(ws)["type"] == "error"
        say(ws, type="message", text="   ")
        assert receive(ws)["field"] == "text"
        say(ws, type="ping")
        assert receive(ws) == {"type": "pong"}
    with db.session() as session:
        count = session.scalar(
            select(func.count())
            .select_from(Interaction)
            .where(Interaction.workspace_id == workspace.id, Interaction.channel == "chat")
        )
    assert count == 1


def test_an_agent_reply_arrives_live_and_the_widget_receipts_move_the_send(
    live_server: LiveServer, workspace: WorkspaceKeys, db: Database
) -> None:
    with socket(live_server.url, write_key=workspace.write_key, anonymous_id="anon-live") as ws:
        receive(ws)
        say(ws, type="message", text="Hello?", client_id="c-1")
        receive_type(ws, "stored")
        customer_id = customer_of(db, workspace.id, "anonymous_id", "anon-live")

        send_id = reply(db, workspace.id, customer_id, "Hi! It ships {{ today }}")  # the server's worker sends it
        pushed = receive_type(ws, "message")["message"]
        assert pushed["direction"] == "out" and pushed["text"] == "Hi! It ships {{ today }}"  # typed, not rendered
        sent = send_of(db, send_id)
        assert sent.interaction_id == pushed["id"] and sent.channel == "chat"

        say(ws, type="delivered", ids=[pushed["id"]])
        say(ws, type="read", ids=[pushed["id"], "int_of_someone_else"])
        say(ws, type="ping")
        receive_type(ws, "pong")  # frames are handled in order: the receipts are stored by now
    assert send_of(db, send_id).status == "opened"


def test_messages_sent_while_offline_are_replayed_on_reconnect(
    live_server: LiveServer, workspace: WorkspaceKeys, db: Database
) -> None:
    with socket(live_server.url, write_key=workspace.write_key, anonymous_id="anon-away") as ws:
        receive(ws)
        say(ws, type="message", text="Anyone there?", client_id="c-1")
        receive_type(ws, "stored")
    customer_id = customer_of(db, workspace.id, "anonymous_id", "anon-away")
    send_id = reply(db, workspace.id, customer_id, "Yes, sorry for the wait")
    deadline = time.monotonic() + 15
    while send_of(db, send_id).status == "queued":
        assert time.monotonic() < deadline, "the server's worker did not send the reply"
        time.sleep(0.05)

    with socket(live_server.url, write_key=workspace.write_key, anonymous_id="anon-away") as ws:
        history = receive(ws)["history"]
    assert [(m["direction"], m["text"]) for m in history] == [
        ("in", "Anyone there?"),
        ("out", "Yes, sorry for the wait"),
    ]


def test_signing_in_keeps_the_anonymous_conversation_and_retires_the_anonymous_id(
    live_server: LiveServer, workspace: WorkspaceKeys, db: Database
) -> None:
    with socket(live_server.url, write_key=workspace.write_key, anonymous_id="anon-before") as ws:
        receive(ws)
        say(ws, type="message", text="Question before signing in", client_id="c-1")
        receive_type(ws, "stored")

    token = token_for(db, workspace.id, "user-7")
    # The widget sends the browser's anonymous id along with the signed-in user.
    with socket(
        live_server.url, write_key=workspace.write_key, user_id="user-7", user_token=token, anonymous_id="anon-before"
    ) as ws:
        ready = receive(ws)
    assert ready["verified"] is True
    assert [m["text"] for m in ready["history"]] == ["Question before signing in"]
    assert customer_of(db, workspace.id, "anonymous_id", "anon-before") == customer_of(
        db, workspace.id, "user_id", "user-7"
    )

    # Knowing the browser's anonymous id no longer opens the signed-in customer's conversation.
    with socket(live_server.url, write_key=workspace.write_key, anonymous_id="anon-before") as ws:
        closed = closed_with(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 4403


def test_the_hello_frame_authenticates_and_silence_times_out(live_server: LiveServer, workspace: WorkspaceKeys) -> None:
    with socket(live_server.url) as ws:
        say(ws, type="hello", write_key=workspace.write_key, anonymous_id="anon-hello")
        assert receive(ws)["type"] == "ready"
    with socket(live_server.url) as ws:
        say(ws, type="message", text="no hello first")
        closed = closed_with(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 4400
