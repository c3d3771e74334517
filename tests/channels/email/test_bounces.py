"""SPEC §5: bounce and complaint processing (DSN / ARF parsing) → suppression. Reports arrive at
the inbound server as a receiving MTA would get them (null sender, real report formats), and
they name the very message the SMTP sink received from us."""

from __future__ import annotations

from email.message import EmailMessage

from sqlalchemy import select

from shopkeeper.channels.email.inbound import InboundSmtpServer
from shopkeeper.clock import FrozenClock
from shopkeeper.consent.models import ConsentEvent, Suppression
from shopkeeper.db.session import Database
from shopkeeper.messaging.models import Interaction
from shopkeeper.messaging.pipeline import DeliveryWorker
from tests.channels.email import mails
from tests.channels.email.conftest import claim, deliver, send_email
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer, make_topic, set_status, status_of
from tests.messaging.factories import add_provider, load, make_template, plan
from tests.messaging.smtp_sink import SmtpSink


def suppressions(db: Database, workspace_id: str) -> list[tuple[str | None, str]]:
    with db.session() as s:
        rows = s.scalars(select(Suppression).where(Suppression.workspace_id == workspace_id))
        return sorted((r.address, r.reason) for r in rows)


def test_a_gmail_hard_bounce_bounces_the_send_suppresses_the_address_and_the_next_send(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, smtp_sink: SmtpSink, inbound: InboundSmtpServer
) -> None:
    gone = make_customer(db, workspace.id, "gone", email="ann.gone@gmail.com")
    make_template(db, workspace.id)
    claim(db, workspace.id, "bounces@acme.test")
    sent = send_email(db, workspace.id, worker, smtp_sink, gone)

    got = deliver(inbound.port, mails.gmail_dsn(sent.raw, recipient="ann.gone@gmail.com"), "bounces@acme.test")
    assert got.code == 250 and "hard_bounce" in got.text

    send, events = load(db, sent.send_id)
    assert send.status == "bounced" and send.reason is not None
    assert send.reason.startswith("hard bounce: bounced 5.1.1: 550-5.1.1 The email account that you tried")
    assert events[-1].data["dsn_status"] == "5.1.1" and events[-1].data["bounce"] == "hard"
    assert suppressions(db, workspace.id) == [("ann.gone@gmail.com", "hard_bounce")]
    with db.session() as s:  # a report is no customer message
        assert s.scalar(select(Interaction.id).where(Interaction.direction == "in")) is None

    again = plan(db, workspace.id, gone)
    worker.drain()
    assert load(db, again)[0].status == "suppressed"
    assert len(smtp_sink.received) == 1


def test_an_exchange_online_report_with_only_headers_and_a_five_digit_status(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, smtp_sink: SmtpSink, inbound: InboundSmtpServer
) -> None:
    bob = make_customer(db, workspace.id, "bob", email="bob@contoso.com")
    make_template(db, workspace.id)
    claim(db, workspace.id, "acme.test")
    sent = send_email(db, workspace.id, worker, smtp_sink, bob)
    assert (
        deliver(inbound.port, mails.outlook_dsn(sent.raw, recipient="bob@contoso.com"), "bounces@acme.test").code == 250
    )
    send, events = load(db, sent.send_id)
    assert send.status == "bounced" and events[-1].data["dsn_status"] == "5.1.10"
    assert suppressions(db, workspace.id) == [("bob@contoso.com", "hard_bounce")]
    # Its In-Reply-To names our message, but a report is never taken for a customer's reply.
    assert send.status != "replied"


def test_a_delay_is_only_history_and_a_transient_failure_is_a_soft_bounce_without_suppression(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, smtp_sink: SmtpSink, inbound: InboundSmtpServer
) -> None:
    cat = make_customer(db, workspace.id, "cat", email="cat@example.net")
    make_template(db, workspace.id)
    claim(db, workspace.id, "bounces@acme.test")
    sent = send_email(db, workspace.id, worker, smtp_sink, cat)

    delayed = mails.postfix_dsn(sent.raw, recipient="cat@example.net", action="delayed", status="4.4.1")
    assert deliver(inbound.port, delayed, "bounces@acme.test").code == 250
    send, events = load(db, sent.send_id)
    assert send.status == "sent" and events[-1].status == "sent" and events[-1].data["action"] == "delayed"
    assert events[-1].reason is not None and events[-1].reason.startswith("delayed 4.4.1: connect to mx.example.net")
    assert suppressions(db, workspace.id) == []

    expired = mails.postfix_dsn(sent.raw, recipient="cat@example.net", action="failed", status="4.4.7")
    assert deliver(inbound.port, expired, "bounces@acme.test").code == 250
    send, events = load(db, sent.send_id)
    assert send.status == "bounced" and events[-1].data["bounce"] == "soft"
    assert suppressions(db, workspace.id) == []  # a soft bounce does not suppress


def test_verp_names_the_send_when_the_report_returns_nothing_of_the_message(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, smtp_sink: SmtpSink, inbound: InboundSmtpServer
) -> None:
    dan = make_customer(db, workspace.id, "dan", email="dan@example.org")
    make_template(db, workspace.id)
    claim(db, workspace.id, "bounces@acme.test")
    add_provider(db, workspace.id, name="smtp", settings=smtp_sink.settings(return_path="bounces@acme.test", verp=True))
    sent = send_email(db, workspace.id, worker, smtp_sink, dan)
    envelope = smtp_sink.received[-1].mail_from
    assert envelope == f"bounces+{sent.send_id}@acme.test"  # what the bounce will come back to

    bare = mails.gmail_dsn(b"Subject: (message not returned)\r\n\r\n", recipient="dan@example.org")
    assert deliver(inbound.port, bare, envelope).code == 250
    assert load(db, sent.send_id)[0].status == "bounced"
    assert suppressions(db, workspace.id) == [("dan@example.org", "hard_bounce")]


def test_a_report_is_applied_once_and_a_forged_one_suppresses_nothing(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, smtp_sink: SmtpSink, inbound: InboundSmtpServer
) -> None:
    eve = make_customer(db, workspace.id, "eve", email="eve@example.com")
    make_template(db, workspace.id)
    claim(db, workspace.id, "bounces@acme.test")
    sent = send_email(db, workspace.id, worker, smtp_sink, eve)
    report = mails.gmail_dsn(sent.raw, recipient="eve@example.com")
    assert deliver(inbound.port, report, "bounces@acme.test").code == 250
    again = deliver(inbound.port, report, "bounces@acme.test")
    assert again.code == 250 and "duplicate" in again.text
    assert [e.status for e in load(db, sent.send_id)[1]].count("bounced") == 1

    # Someone who never saw our mail guesses at a send: nothing matches, nothing is suppressed.
    forged_original = sent.raw.replace(sent.send_id.encode(), b"snd_" + b"0" * 32)
    forged = mails.gmail_dsn(forged_original, recipient="victim@example.com")
    assert deliver(inbound.port, forged, "bounces@acme.test").code == 250
    assert suppressions(db, workspace.id) == [("eve@example.com", "hard_bounce")]


def test_a_yahoo_complaint_suppresses_the_address_and_opts_the_customer_out_of_marketing_email(
    frozen_clock: FrozenClock,
    db: Database,
    workspace: WorkspaceKeys,
    worker: DeliveryWorker,
    smtp_sink: SmtpSink,
    inbound: InboundSmtpServer,
) -> None:
    carol = make_customer(db, workspace.id, "carol", email="carol@yahoo.com")
    make_topic(db, workspace.id, "offers")
    make_topic(db, workspace.id, "news", lawful_basis="legitimate_interest")
    make_topic(db, workspace.id, "sms-only", channels=("sms",))
    set_status(db, workspace.id, carol, "email", "offers", "opted_in")
    make_template(db, workspace.id, "promo", kind="marketing", topic="offers")
    claim(db, workspace.id, "fbl@acme.test")
    sent = send_email(db, workspace.id, worker, smtp_sink, carol, template="promo")

    got = deliver(inbound.port, mails.yahoo_arf(sent.raw, recipient="carol@yahoo.com"), "fbl@acme.test")
    assert got.code == 250 and "complaint" in got.text

    send, events = load(db, sent.send_id)
    assert send.status == "complained" and events[-1].data["feedback_type"] == "abuse"
    assert events[-1].reason == "complaint (abuse) via Yahoo!-Mail-Feedback/2.0"
    assert suppressions(db, workspace.id) == [("carol@yahoo.com", "complaint")]
    # Opted out of every email topic (also one that needed no opt-in), nothing else.
    assert status_of(db, workspace.id, carol, "email", "offers") == "opted_out"
    assert status_of(db, workspace.id, carol, "email", "news") == "opted_out"
    assert status_of(db, workspace.id, carol, "sms", "sms-only") == "unknown"
    with db.session() as s:
        sources = set(s.scalars(select(ConsentEvent.source).where(ConsentEvent.status == "opted_out")))
    assert sources == {"complaint"}

    after = plan(db, workspace.id, carol, template="promo")
    worker.drain()
    assert load(db, after)[0].status == "suppressed"


def test_an_aol_complaint_with_the_recipient_redacted_is_matched_by_message_id(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, smtp_sink: SmtpSink, inbound: InboundSmtpServer
) -> None:
    dora = make_customer(db, workspace.id, "dora", email="dora@aol.com")
    make_template(db, workspace.id)
    claim(db, workspace.id, "fbl@acme.test")
    sent = send_email(db, workspace.id, worker, smtp_sink, dora)
    report = mails.aol_arf(sent.raw)
    assert b"dora@aol.com" not in report
    assert deliver(inbound.port, report, "fbl@acme.test").code == 250
    assert load(db, sent.send_id)[0].status == "complained"
    assert suppressions(db, workspace.id) == [("dora@aol.com", "complaint")]


def test_a_not_spam_report_changes_nothing(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, smtp_sink: SmtpSink, inbound: InboundSmtpServer
) -> None:
    fay = make_customer(db, workspace.id, "fay", email="fay@yahoo.com")
    make_template(db, workspace.id)
    claim(db, workspace.id, "fbl@acme.test")
    sent = send_email(db, workspace.id, worker, smtp_sink, fay)
    report = mails.yahoo_arf(sent.raw, recipient="fay@yahoo.com").replace(
        b"Feedback-Type: abuse", b"Feedback-Type: not-spam"
    )
    assert deliver(inbound.port, report, "fbl@acme.test").code == 250
    send, events = load(db, sent.send_id)
    assert send.status == "sent" and events[-1].data["feedback_type"] == "not-spam"
    assert suppressions(db, workspace.id) == []


def test_a_report_about_another_workspaces_send_does_nothing(
    db: Database,
    make_workspace,
    worker: DeliveryWorker,
    smtp_sink: SmtpSink,
    inbound: InboundSmtpServer,  # type: ignore[no-untyped-def]
) -> None:
    a, b = make_workspace("A"), make_workspace("B")
    gus = make_customer(db, a.id, "gus", email="gus@example.com")
    make_template(db, a.id)
    claim(db, b.id, "bounces@b-shop.example.com")
    sent = send_email(db, a.id, worker, smtp_sink, gus)
    report = mails.gmail_dsn(sent.raw, recipient="gus@example.com")
    got = deliver(inbound.port, report, "bounces@b-shop.example.com")
    assert got.code == 250 and "unmatched" in got.text
    assert load(db, sent.send_id)[0].status == "sent"
    assert suppressions(db, a.id) == [] and suppressions(db, b.id) == []


def test_parsed_reports_expose_what_they_say() -> None:
    """The parsers on their own, on a message built without any of our ids."""
    from shopkeeper.channels.email.arf import parse_arf
    from shopkeeper.channels.email.dsn import parse_dsn
    from shopkeeper.channels.email.parse import parse_bytes

    original = b"Message-ID: <abc@shop.example.com>\r\nTo: x@example.com\r\nSubject: hi\r\n\r\nbody\r\n"
    dsn = parse_dsn(parse_bytes(mails.outlook_dsn(original, recipient="x@example.com")))
    assert dsn is not None and dsn.reporting_mta == "AM6PR05MB4935.eurprd05.prod.outlook.com"
    (rcpt,) = dsn.recipients
    assert (rcpt.final_recipient, rcpt.action, rcpt.status, rcpt.permanent) == (
        "x@example.com",
        "failed",
        "5.1.10",
        True,
    )
    assert dsn.original.message_ids == ["<abc@shop.example.com>"]
    arf = parse_arf(parse_bytes(mails.yahoo_arf(original, recipient="x@example.com")))
    assert arf is not None and arf.is_complaint and arf.original_rcpt_to == "x@example.com"
    assert arf.original_mail_from == "bounces@acme.test" and arf.original.message_ids == ["<abc@shop.example.com>"]
    plain = EmailMessage()
    plain.set_content("not a report")
    assert parse_dsn(plain) is None and parse_arf(plain) is None
