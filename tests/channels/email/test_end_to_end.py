"""End to end with real servers: `shopkeeper serve` (with its inbound SMTP server) in its own
process, mail going out through the SMTP provider to a real SMTP server, and replies, a bounce
and a complaint coming back in over SMTP to the served port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from shopkeeper.consent.models import Suppression
from shopkeeper.db.session import Database
from shopkeeper.messaging.models import Interaction
from shopkeeper.messaging.pipeline import DeliveryWorker
from tests.channels.email import mails
from tests.channels.email.conftest import claim, deliver, send_email
from tests.conftest import LiveServer, WorkspaceKeys, free_port, start_server
from tests.consent.factories import make_customer, make_topic, set_policy, set_status, status_of
from tests.messaging.factories import load, make_template, plan
from tests.messaging.smtp_sink import SmtpSink


@pytest.fixture
def served(db_url: str, db: Database, tmp_path: Path) -> Iterator[tuple[LiveServer, int]]:
    port = free_port()
    server = start_server(
        db_url,
        tmp_path / "server.log",
        SHOPKEEPER_INBOUND_SMTP_PORT=str(port),
        SHOPKEEPER_DELIVERY_IN_PROCESS="false",  # the test's worker delivers, when told
    )
    try:
        yield server, port
    finally:
        server.stop()


def test_replies_bounces_and_complaints_come_back_through_the_served_smtp_port(
    served: tuple[LiveServer, int], db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, smtp_sink: SmtpSink
) -> None:
    _, port = served
    set_policy(db, workspace.id, {"quiet_hours": None})
    claim(db, workspace.id, "support@acme.test", "bounces@acme.test", "fbl@acme.test")
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    gone = make_customer(db, workspace.id, "gone", email="gone@example.com")
    carol = make_customer(db, workspace.id, "carol", email="carol@yahoo.com")
    make_topic(db, workspace.id, "offers")
    set_status(db, workspace.id, carol, "email", "offers", "opted_in")
    make_template(db, workspace.id)
    make_template(db, workspace.id, "promo", kind="marketing", topic="offers")

    to_ann = send_email(db, workspace.id, worker, smtp_sink, ann)
    to_gone = send_email(db, workspace.id, worker, smtp_sink, gone)
    to_carol = send_email(db, workspace.id, worker, smtp_sink, carol, template="promo")
    assert smtp_sink.received[0].mail_from == "bounces@acme.test"

    # (a) Ann replies: an inbound interaction on Ann, the send replied.
    reply = deliver(port, mails.gmail_reply(original_id=to_ann.message_id), "support@acme.test", "ann@example.com")
    assert reply.code == 250, reply.text
    with db.session() as s:
        (inbound,) = s.scalars(select(Interaction).where(Interaction.direction == "in"))
    assert inbound.customer_id == ann and inbound.in_reply_to == to_ann.message_id
    assert load(db, to_ann.send_id)[0].status == "replied"

    # (b) A hard bounce: bounced, suppressed, and the next send to that address is suppressed.
    assert deliver(port, mails.gmail_dsn(to_gone.raw, recipient="gone@example.com"), "bounces@acme.test").code == 250
    assert load(db, to_gone.send_id)[0].status == "bounced"
    next_send = plan(db, workspace.id, gone)
    worker.drain()
    assert load(db, next_send)[0].status == "suppressed"

    # (c) A complaint: complained, suppressed, and opted out of marketing email.
    assert deliver(port, mails.yahoo_arf(to_carol.raw, recipient="carol@yahoo.com"), "fbl@acme.test").code == 250
    assert load(db, to_carol.send_id)[0].status == "complained"
    assert status_of(db, workspace.id, carol, "email", "offers") == "opted_out"

    with db.session() as s:
        found = sorted((r.address, r.reason) for r in s.scalars(select(Suppression)))
    assert found == [("carol@yahoo.com", "complaint"), ("gone@example.com", "hard_bounce")]
    assert len(smtp_sink.received) == 3  # nothing more went out
    # Unknown recipients are still refused by the served port.
    assert deliver(port, mails.gmail_reply(original_id="<x@y.example.com>"), "sales@acme.test").code == 550
