"""SPEC §5: inbound email by SMTP, threaded by Message-ID / In-Reply-To / References — a reply
lands on the right customer as an inbound interaction, and the send it answers is `replied`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from shopkeeper.channels.email.inbound import InboundSmtpServer
from shopkeeper.channels.email.replies import InboundEmail, on_inbound_email
from shopkeeper.customers.models import Customer, Identity
from shopkeeper.db.session import Database
from shopkeeper.messaging.models import Interaction
from shopkeeper.messaging.pipeline import DeliveryWorker
from tests.channels.email import mails
from tests.channels.email.conftest import claim, deliver, send_email
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer
from tests.messaging.factories import load, make_template
from tests.messaging.smtp_sink import SmtpSink


def inbound_rows(db: Database, workspace_id: str) -> list[Interaction]:
    with db.session() as s:
        return list(
            s.scalars(
                select(Interaction)
                .where(Interaction.workspace_id == workspace_id, Interaction.direction == "in")
                .order_by(Interaction.created_at, Interaction.id)
            )
        )


@pytest.fixture
def heard() -> Iterator[list[InboundEmail]]:
    seen: list[InboundEmail] = []
    remove = on_inbound_email(lambda _session, inbound: seen.append(inbound))
    try:
        yield seen
    finally:
        remove()


def test_a_reply_lands_on_the_customer_threads_onto_the_send_and_marks_it_replied(
    db: Database,
    workspace: WorkspaceKeys,
    worker: DeliveryWorker,
    smtp_sink: SmtpSink,
    inbound: InboundSmtpServer,
    heard: list[InboundEmail],
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    make_template(db, workspace.id)
    claim(db, workspace.id, "support@acme.test")
    sent = send_email(db, workspace.id, worker, smtp_sink, ann, data={"conversation_id": "cnv_1"})

    got = deliver(inbound.port, mails.gmail_reply(original_id=sent.message_id), "support@acme.test", "ann@example.com")
    assert (got.stage, got.code) == ("data", 250), got.text

    (reply,) = inbound_rows(db, workspace.id)
    send, events = load(db, sent.send_id)
    assert reply.customer_id == ann and reply.channel == "email" and reply.status == "received"
    assert reply.address == "ann@example.com" and reply.subject == "Re: Welcome, Ann"
    assert reply.message_id == "<CAJ+q8Uv7Ew1TfM2Jx0rRmN-a4pS=Qx9gLzq1@mail.gmail.com>"
    assert reply.in_reply_to == sent.message_id
    # The thread's conversation, as the email channel found it (the inbox, when it listens, then
    # files the message under a conversation that exists: tests/inbox).
    assert heard[0].thread.conversation_id == "cnv_1"
    assert reply.text is not None and reply.text.startswith("Thanks! Where is my order #1042?")
    assert "wrote:" in reply.text and reply.data["reply_text"] == "Thanks! Where is my order #1042?"
    assert reply.html is not None and "gmail_quote" in reply.html
    assert reply.data["answers_send_id"] == sent.send_id and reply.data["to"] == "support@acme.test"
    assert send.status == "replied" and events[-1].status == "replied"
    assert events[-1].data["interaction_id"] == reply.id
    with db.session() as s:  # the outbound interaction follows its send
        out = s.get(Interaction, send.interaction_id)
        assert out is not None and out.status == "replied"
    # The inbox hook saw the stored interaction, with how it was matched.
    (event,) = heard
    assert event.interaction.id == reply.id and event.thread.send is not None
    assert event.thread.send.id == sent.send_id and not event.customer_created


def test_the_same_message_delivered_twice_is_stored_once(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, smtp_sink: SmtpSink, inbound: InboundSmtpServer
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    make_template(db, workspace.id)
    claim(db, workspace.id, "acme.test")  # the whole domain
    sent = send_email(db, workspace.id, worker, smtp_sink, ann)
    raw = mails.gmail_reply(original_id=sent.message_id, to="anything+else@acme.test")
    assert deliver(inbound.port, raw, "anything+else@acme.test").code == 250
    second = deliver(inbound.port, raw, "anything+else@acme.test")  # the sender never saw our 250
    assert second.code == 250 and "duplicate" in second.text
    assert len(inbound_rows(db, workspace.id)) == 1
    assert [e.status for e in load(db, sent.send_id)[1]].count("replied") == 1


def test_an_unknown_sender_becomes_a_customer_and_a_thread_found_through_references(
    db: Database,
    workspace: WorkspaceKeys,
    worker: DeliveryWorker,
    smtp_sink: SmtpSink,
    inbound: InboundSmtpServer,
    heard: list[InboundEmail],
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    make_template(db, workspace.id)
    claim(db, workspace.id, "support@acme.test")
    sent = send_email(db, workspace.id, worker, smtp_sink, ann)
    # Ann forwarded our mail; her colleague answers. In-Reply-To names Ann's forward (which we
    # never saw); References still carries our Message-ID further back.
    raw = mails.gmail_reply(
        original_id="<fwd-1@example.com>",
        references=f"{sent.message_id} <fwd-1@example.com>",
        sender="bea@example.org",
        name="Bea Colleague",
        message_id="<bea-1@example.org>",
    )
    assert deliver(inbound.port, raw, "support@acme.test").code == 250

    (reply,) = inbound_rows(db, workspace.id)
    assert reply.customer_id != ann and reply.data["thread_customer_id"] == ann
    assert reply.in_reply_to == "<fwd-1@example.com>" and reply.data["answers_send_id"] == sent.send_id
    with db.session() as s:
        bea = s.get(Customer, reply.customer_id)
        assert bea is not None and bea.traits == {"name": "Bea Colleague"}
        owner = s.scalar(select(Identity.customer_id).where(Identity.value == "bea@example.org"))
        assert owner == bea.id
    assert heard[0].customer_created
    assert load(db, sent.send_id)[0].status == "replied"


def test_html_only_replies_get_text_and_auto_replies_do_not_count_as_replies(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, smtp_sink: SmtpSink, inbound: InboundSmtpServer
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    make_template(db, workspace.id)
    claim(db, workspace.id, "support@acme.test")
    sent = send_email(db, workspace.id, worker, smtp_sink, ann)

    assert deliver(inbound.port, mails.out_of_office(original_id=sent.message_id), "support@acme.test").code == 250
    (ooo,) = inbound_rows(db, workspace.id)
    assert ooo.data["auto_reply"] is True and ooo.customer_id == ann
    assert load(db, sent.send_id)[0].status == "sent"  # an out-of-office is no reply

    assert deliver(inbound.port, mails.outlook_html_reply(original_id=sent.message_id), "support@acme.test").code == 250
    _, outlook = inbound_rows(db, workspace.id)
    assert outlook.html is not None and outlook.text is not None
    assert outlook.text.startswith("Could you deliver on Saturday? Merci à vous.")
    assert "margin" not in outlook.text  # no CSS from <style>
    assert outlook.data["reply_text"] == "Could you deliver on Saturday? Merci à vous."
    assert load(db, sent.send_id)[0].status == "replied"


def test_mail_that_answers_nothing_of_ours_is_still_kept_for_its_sender(
    db: Database, workspace: WorkspaceKeys, inbound: InboundSmtpServer
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    claim(db, workspace.id, "support@acme.test")
    raw = mails.gmail_reply(original_id="<unknown@elsewhere.example.com>", subject="Question about sizes")
    assert deliver(inbound.port, raw, "support@acme.test").code == 250
    (message,) = inbound_rows(db, workspace.id)
    assert message.customer_id == ann  # (no thread: the inbox, if listening, starts a conversation)
    assert "answers_interaction_id" not in message.data
    assert "answers_send_id" not in message.data and message.subject == "Question about sizes"


def test_each_workspace_gets_only_the_mail_sent_to_its_own_addresses(
    db: Database,
    make_workspace,
    inbound: InboundSmtpServer,  # type: ignore[no-untyped-def]
) -> None:
    a, b = make_workspace("A"), make_workspace("B")
    claim(db, a.id, "support@a-shop.example.com")
    claim(db, b.id, "b-shop.example.com")
    raw = mails.gmail_reply(original_id="<x@y.example.com>", to="help@b-shop.example.com")
    assert deliver(inbound.port, raw, "help@b-shop.example.com").code == 250
    assert inbound_rows(db, a.id) == [] and len(inbound_rows(db, b.id)) == 1
    # A's customers never learn of B's sender.
    with db.session() as s:
        assert s.scalar(select(Identity.id).where(Identity.workspace_id == a.id)) is None
