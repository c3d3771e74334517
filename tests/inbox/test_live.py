"""The issue's "done means", against a real `shopkeeper serve` process: an email sent by SMTP to
the inbound server becomes a conversation on the right customer, classified, routed to the
right team and acknowledged by email; a chat message over a real WebSocket appears live on an
agent's Server-Sent Events stream, and the agent's reply goes back on the same socket."""

from __future__ import annotations

import contextlib
import socket as socket_module
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import orjson
import pytest

from shopkeeper.db.session import Database
from tests.channels.chat.helpers import customer_of, receive, receive_type, say, socket
from tests.channels.email.conftest import claim, deliver
from tests.conftest import LiveServer, WorkspaceKeys, free_port, start_server
from tests.consent.factories import make_customer, set_policy
from tests.inbox.factories import make_agent, make_team, set_inbox, set_rules
from tests.messaging.factories import add_provider
from tests.messaging.smtp_sink import SmtpSink


class Stream:
    """An agent's SSE connection, read on a thread: events land in a list as they arrive."""

    def __init__(self, url: str, key: str, **params: Any) -> None:
        self.events: list[dict[str, Any]] = []
        self.ids: list[int] = []
        self._client = httpx.Client(timeout=httpx.Timeout(30, read=60))
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, key, params), daemon=True)
        self._thread.start()
        assert self._ready.wait(15), "the stream did not open"

    def _run(self, url: str, key: str, params: dict[str, Any]) -> None:
        headers = {"Authorization": f"Bearer {key}", **params.pop("headers", {})}
        try:
            with self._client.stream("GET", f"{url}/api/v1/inbox/stream", headers=headers, params=params) as r:
                self.status = r.status_code
                self._response = r
                self._ready.set()
                event: dict[str, str] = {}
                for line in r.iter_lines():
                    if line.startswith("id: "):
                        event["id"] = line[4:]
                    elif line.startswith("data: "):
                        event["data"] = line[6:]
                    elif line == "" and "data" in event:
                        self.ids.append(int(event["id"]))
                        self.events.append(orjson.loads(event["data"]))
                        event = {}
        except httpx.HTTPError:
            return

    def wait_for(self, predicate: Any, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in list(self.events):
                if predicate(event):
                    return event
            time.sleep(0.02)
        raise AssertionError(f"no such event; got {[e['kind'] for e in self.events]}")

    def close(self) -> None:
        """Hang up for real, so that the server ends the stream: shutting the socket down is the
        one thing that wakes the reading thread from another thread."""
        response = getattr(self, "_response", None)
        if response is not None:
            network = response.extensions.get("network_stream")
            sock = network.get_extra_info("socket") if network is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket_module.SHUT_RDWR)
        self._thread.join(5)
        self._client.close()


@pytest.fixture
def db_url(module_db_url: str) -> str:
    """The tests here share one database and one server, each in a workspace of its own."""
    return module_db_url


@pytest.fixture(scope="module")
def served(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, int]]:
    """`shopkeeper serve` with its inbound SMTP server, on a free port."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    server = start_server(module_db_url, log, SHOPKEEPER_INBOUND_SMTP_PORT=str(port))
    try:
        yield server, port
    finally:
        server.stop()


@pytest.fixture
def live_server(served: tuple[LiveServer, int]) -> LiveServer:
    return served[0]


def test_an_email_becomes_a_classified_routed_conversation_acknowledged_by_email(
    served: tuple[LiveServer, int], db: Database, workspace: WorkspaceKeys, smtp_sink: SmtpSink
) -> None:
    server, port = served
    set_policy(db, workspace.id, {"quiet_hours": None})
    claim(db, workspace.id, "support@acme.test")
    add_provider(db, workspace.id, name="smtp", settings=smtp_sink.settings())
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    agent = make_agent(db, workspace.id, "billing-agent@example.com")
    make_team(db, workspace.id, "billing", [agent])
    make_team(db, workspace.id, "general", [])
    set_rules(
        db,
        workspace.id,
        [
            {"name": "money", "conditions": {"intent": ["billing"]}, "actions": {"team": "billing", "tags": ["money"]}},
            {"name": "rest", "actions": {"team": "general"}},
        ],
    )
    set_inbox(db, workspace.id, {"auto_ack": {"enabled": True, "subject": "We have your message"}})
    key = workspace.secret_key
    stream = Stream(server.url, key)
    try:
        mail = EmailMessage()
        mail["From"] = "Ann Example <ann@example.com>"
        mail["To"] = "support@acme.test"
        mail["Subject"] = "Charged twice"
        mail["Message-ID"] = "<first-contact-1@example.com>"
        mail.set_content("Hello, I was charged twice for invoice 2231 this month. Please refund the extra payment.")
        assert deliver(port, mail.as_bytes(), "support@acme.test", "ann@example.com").code == 250

        routed = stream.wait_for(lambda e: e["kind"] == "routed", timeout=30)
        conversation = httpx.get(
            f"{server.url}/api/v1/conversations/{routed['conversation_id']}", headers={"Authorization": f"Bearer {key}"}
        ).json()["conversation"]
        assert conversation["customer_id"] == ann and conversation["channel"] == "email"
        assert conversation["intent"] == "billing" and conversation["assignee_id"] == agent
        assert "money" in conversation["tags"] and conversation["subject"] == "Charged twice"

        deadline = time.monotonic() + 30
        while not smtp_sink.received and time.monotonic() < deadline:
            time.sleep(0.05)
        (ack,) = smtp_sink.received
        assert ack.rcpt_tos == ["ann@example.com"]
        message = ack.message
        assert message["Subject"] == "We have your message"
        assert message["In-Reply-To"] == "<first-contact-1@example.com>"  # threads under Ann's mail
    finally:
        stream.close()


def test_a_chat_message_appears_live_on_the_agent_stream_and_the_reply_goes_back_on_the_socket(
    live_server: LiveServer, db: Database, make_workspace: Any
) -> None:
    workspace: WorkspaceKeys = make_workspace("Chat shop")
    other: WorkspaceKeys = make_workspace("Other shop")
    key = workspace.secret_key
    stream = Stream(live_server.url, key)
    outsider = Stream(live_server.url, other.secret_key)
    try:
        with socket(live_server.url, write_key=workspace.write_key, anonymous_id="anon-inbox") as ws:
            receive(ws)
            say(ws, type="message", text="Hi, do you have the oak table in stock?", client_id="c-1")
            receive_type(ws, "stored")
            message = stream.wait_for(lambda e: e["kind"] == "message" and e["data"]["channel"] == "chat")
            assert message["data"]["text"] == "Hi, do you have the oak table in stock?"
            customer_id = customer_of(db, workspace.id, "anonymous_id", "anon-inbox")
            assert message["customer_id"] == customer_id

            reply = httpx.post(
                f"{live_server.url}/api/v1/conversations/{message['conversation_id']}/reply",
                headers={"Authorization": f"Bearer {key}"},
                json={"text": "Yes, two left!"},
            )
            assert reply.status_code == 201, reply.text
            assert reply.json()["channel"] == "chat"
            pushed = receive_type(ws, "message", timeout=20)["message"]
            assert pushed["direction"] == "out" and pushed["text"] == "Yes, two left!"
            stream.wait_for(lambda e: e["kind"] == "reply")
        # Another workspace's agent saw none of it.
        time.sleep(0.5)
        assert outsider.events == []

        # A reconnecting agent resumes after the last event it saw and misses nothing.
        seen = stream.ids[0]
        resumed = Stream(live_server.url, key, headers={"Last-Event-ID": str(seen)})
        try:
            replayed = resumed.wait_for(lambda e: e["kind"] == "reply")
            assert resumed.ids[0] == seen + 1 or resumed.ids[0] > seen
            assert replayed["conversation_id"] == message["conversation_id"]
        finally:
            resumed.close()
    finally:
        stream.close()
        outsider.close()


def test_the_stream_needs_a_secret_key_and_a_numeric_last_event_id(
    live_server: LiveServer, workspace: WorkspaceKeys
) -> None:
    url = f"{live_server.url}/api/v1/inbox/stream"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {workspace.write_key}"}).status_code == 403
    bad = httpx.get(url, headers={"Authorization": f"Bearer {workspace.secret_key}", "Last-Event-ID": "abc"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "Last-Event-ID"
