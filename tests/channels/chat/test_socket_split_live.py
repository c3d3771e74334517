"""SPEC §5 web chat: an agent's reply sent by a delivery worker in another process reaches the
visitor's socket, held by a `shopkeeper serve` that delivers nothing itself. Apart from
test_socket_live.py, whose server (delivering in process) shares one database between its tests
and would race this test's worker for the send."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shopkeeper.channels.chat.hub import hub
from shopkeeper.channels.chat.relay import notify_through
from shopkeeper.db.session import Database
from shopkeeper.messaging.pipeline import DeliveryWorker
from tests.channels.chat.helpers import customer_of, receive, receive_type, reply, say, send_of, socket
from tests.conftest import LiveServer, WorkspaceKeys, start_server


@pytest.fixture
def split_server(db_url: str, db: Database, tmp_path: Path) -> Iterator[LiveServer]:
    """A server that delivers nothing itself: separate worker processes do."""
    server = start_server(db_url, tmp_path / "server.log", SHOPKEEPER_DELIVERY_IN_PROCESS="false")
    try:
        yield server
    finally:
        server.stop()


def test_a_reply_sent_by_a_worker_in_another_process_reaches_the_socket(
    split_server: LiveServer, workspace: WorkspaceKeys, db: Database
) -> None:
    """The worker here (this test process) hands off; the server process holds the socket:
    PostgreSQL NOTIFY carries it across, SQLite the server's poll of the interactions table."""
    previous = hub.notifier
    notify_through(db)
    worker = DeliveryWorker(db)
    try:
        with socket(split_server.url, write_key=workspace.write_key, anonymous_id="anon-far") as ws:
            receive(ws)
            say(ws, type="message", text="Hi", client_id="c-1")
            receive_type(ws, "stored")
            customer_id = customer_of(db, workspace.id, "anonymous_id", "anon-far")
            send_id = reply(db, workspace.id, customer_id, "Answered from another process")
            assert worker.drain().sent == 1
            pushed = receive_type(ws, "message")["message"]
        assert pushed["text"] == "Answered from another process"
        assert pushed["id"] == send_of(db, send_id).interaction_id
    finally:
        worker.pool.close()
        hub.notifier = previous
