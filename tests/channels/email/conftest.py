"""Fixtures for inbound email: the receiving SMTP server on a loopback port, the SMTP sink and
delivery worker of the messaging tests, and helpers to send mail in and out for real."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from shopkeeper.auth.models import Workspace
from shopkeeper.channels.email.inbound import InboundSmtpServer
from shopkeeper.db.session import Database
from shopkeeper.messaging.pipeline import DeliveryWorker
from tests.messaging.conftest import smtp_sink, worker  # noqa: F401 - fixtures used here
from tests.messaging.factories import add_provider, load, plan
from tests.messaging.smtp_sink import SmtpSink


@pytest.fixture
def inbound(db: Database) -> Iterator[InboundSmtpServer]:
    server = InboundSmtpServer(db, port=0, max_bytes=256 * 1024).start()
    try:
        yield server
    finally:
        server.stop()


def claim(db: Database, workspace_id: str, *entries: str) -> None:
    with db.session(write=True) as s:
        ws = s.get(Workspace, workspace_id)
        assert ws is not None
        ws.settings = {**(ws.settings or {}), "inbound_email": list(entries)}


@dataclass
class Reply:
    code: int
    text: str
    stage: str  # where the conversation ended: rcpt or data


def deliver(port: int, raw: bytes, rcpt: str | list[str], mail_from: str = "") -> Reply:
    """One SMTP transaction to the inbound server, as a sending MTA would make it."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as conn:
        conn.ehlo("mx.example.net")
        code, text = conn.mail(mail_from)
        assert code == 250, text
        for address in [rcpt] if isinstance(rcpt, str) else rcpt:
            code, text = conn.rcpt(address)
            if code != 250:
                return Reply(code, text.decode(), "rcpt")
        code, text = conn.data(raw)
        return Reply(code, text.decode(), "data")


@dataclass
class Sent:
    send_id: str
    raw: bytes  # the bytes the recipient's server received

    @property
    def message_id(self) -> str:
        return f"<{self.send_id}@acme.test>"


def send_email(
    db: Database, workspace_id: str, delivery: DeliveryWorker, sink: SmtpSink, customer_id: str, **values: object
) -> Sent:
    """Plan a send, deliver it through the SMTP provider to the sink, return what arrived."""
    if not _has_provider(db, workspace_id):
        add_provider(db, workspace_id, name="smtp", settings=sink.settings(return_path="bounces@acme.test"))
    before = len(sink.received)
    send_id = plan(db, workspace_id, customer_id, **values)
    delivery.drain()
    assert len(sink.received) == before + 1, [(e.status, e.reason) for e in load(db, send_id)[1]]
    return Sent(send_id, sink.received[-1].raw)


def _has_provider(db: Database, workspace_id: str) -> bool:
    from sqlalchemy import select

    from shopkeeper.messaging.models import ChannelProvider

    with db.session() as s:
        return s.scalar(select(ChannelProvider.id).where(ChannelProvider.workspace_id == workspace_id)) is not None
