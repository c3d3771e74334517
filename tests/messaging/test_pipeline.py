"""SPEC §5: every outbound message goes consent → suppression → caps/quiet hours → render →
provider → status, each status with its time and reason; retries with backoff, failover,
idempotent planning, and no message sent twice when a worker dies mid-way."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from shopkeeper import clock
from shopkeeper.clock import FrozenClock
from shopkeeper.consent.models import Contact
from shopkeeper.db.session import Database
from shopkeeper.errors import Conflict
from shopkeeper.messaging.models import Interaction, Send
from shopkeeper.messaging.pipeline import DeliveryWorker, RoundReport
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer, make_topic, set_policy, set_status
from tests.messaging.factories import add_provider, load, make_template, plan
from tests.messaging.smtp_sink import SmtpSink


def _statuses(db: Database, send_id: str) -> list[str]:
    return [e.status for e in load(db, send_id)[1]]


def test_a_transactional_email_through_the_dev_provider_is_recorded_and_delivered(
    frozen_clock: FrozenClock, db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    make_template(db, workspace.id)
    send_id = plan(db, workspace.id, ann, data={"event": {"order": 7}})
    report = worker.drain()
    assert (report.claimed, report.sent) == (1, 1), load(db, send_id)[0].reason
    send, events = load(db, send_id)
    assert send.status == "delivered" and send.provider == "dev" and send.to_address == "ann@example.com"
    assert [e.status for e in events] == ["queued", "sent", "delivered"]
    assert all(e.at == frozen_clock.now() for e in events)
    with db.session() as s:
        interaction = s.get(Interaction, send.interaction_id)
        assert interaction is not None
        assert interaction.direction == "out" and interaction.subject == "Welcome, friend"
        assert interaction.message_id == f"<{send.id}@dev.shopkeeper.invalid>"
        # Links through the click redirect, and the open pixel.
        assert interaction.html is not None and "http://shop.test/t/c/" in interaction.html
        assert "https://acme.test/shop" not in interaction.html and "/t/o/" in interaction.html


def test_planning_is_idempotent_per_key(db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    make_template(db, workspace.id)
    first = plan(db, workspace.id, ann, idempotency_key="order-7-confirmation")
    again = plan(db, workspace.id, ann, idempotency_key="order-7-confirmation")
    assert first == again
    with pytest.raises(Conflict):
        plan(db, workspace.id, ann, idempotency_key="order-7-confirmation", data={"other": 1})
    worker.drain()
    worker.drain()
    with db.session() as s:
        assert s.scalar(select(Send.status).where(Send.id == first)) == "delivered"
        assert len(list(s.scalars(select(Interaction.id)))) == 1


def test_marketing_without_consent_is_skipped_and_suppressed_addresses_are_suppressed(
    frozen_clock: FrozenClock, db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    bob = make_customer(db, workspace.id, "bob", email="bob@example.com")
    make_topic(db, workspace.id, "offers")
    make_template(db, workspace.id, "promo", kind="marketing", topic="offers")
    set_status(db, workspace.id, bob, "email", "offers", "opted_in")
    from shopkeeper.consent import service

    with db.session(write=True) as s:
        service.suppress(s, workspace.id, "email", "bob@example.com", "hard_bounce", clock.now())
    not_asked = plan(db, workspace.id, ann, template="promo")
    bounced = plan(db, workspace.id, bob, template="promo")
    worker.drain()
    send, _ = load(db, not_asked)
    assert send.status == "skipped" and send.reason is not None and send.reason.startswith("not_opted_in")
    send, _ = load(db, bounced)
    assert send.status == "suppressed" and send.reason is not None and "hard_bounce" in send.reason
    with db.session() as s:
        assert s.scalar(select(Contact.id)) is None  # nothing reached anyone: no contact counted


def test_quiet_hours_delay_the_send_until_the_customer_morning(
    frozen_clock: FrozenClock, db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker
) -> None:
    # 12:00 UTC is 21:00 in Tokyo: inside 21:00–08:00 quiet hours.
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com", timezone="Asia/Tokyo")
    make_topic(db, workspace.id, "offers")
    make_template(db, workspace.id, "promo", kind="marketing", topic="offers")
    set_status(db, workspace.id, ann, "email", "offers", "opted_in")
    set_policy(db, workspace.id, {"quiet_hours": {"start": "21:00", "end": "08:00"}})
    send_id = plan(db, workspace.id, ann, template="promo")
    report = worker.drain()
    assert report.delayed == 1 and report.sent == 0
    send, events = load(db, send_id)
    assert send.status == "queued" and events[-1].reason is not None and "quiet_hours" in events[-1].reason
    assert send.next_attempt_at == frozen_clock.now() + timedelta(hours=11)  # 08:00 Tokyo
    frozen_clock.advance(timedelta(hours=10))
    assert worker.drain().claimed == 0  # not due yet
    frozen_clock.advance(timedelta(hours=1))
    assert worker.drain().sent == 1
    assert load(db, send_id)[0].status == "delivered"


def test_smtp_refusals_retry_with_backoff_then_fail_over_to_the_secondary(
    frozen_clock: FrozenClock,
    db: Database,
    workspace: WorkspaceKeys,
    worker: DeliveryWorker,
    smtp_sink: SmtpSink,
    second_sink: SmtpSink,
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    make_template(db, workspace.id)
    add_provider(db, workspace.id, name="primary", settings=smtp_sink.settings(), cost_per_unit=0.001, currency="USD")
    smtp_sink.handler.data_reply, smtp_sink.handler.refuse_times = "451 4.3.0 try again later", 100

    # Only the primary: a temporary refusal is retried later, with growing, jittered delays.
    send_id = plan(db, workspace.id, ann)
    delays = []
    for _ in range(3):
        report = worker.drain()
        assert report.retried == 1
        send, _ = load(db, send_id)
        delays.append((send.next_attempt_at - frozen_clock.now()).total_seconds())
        frozen_clock.advance(send.next_attempt_at - frozen_clock.now())
    assert 15 <= delays[0] <= 30 and 30 <= delays[1] <= 60 and 60 <= delays[2] <= 120
    with db.session() as s:
        assert s.scalar(select(Contact.id)) is None  # a refused attempt does not count against caps

    # A secondary: the next attempt fails over at once.
    add_provider(db, workspace.id, name="secondary", priority=5, settings=second_sink.settings())
    report = worker.drain()
    assert report.sent == 1
    send, events = load(db, send_id)
    assert send.status == "sent" and send.provider == "secondary" and send.attempts == 4
    assert [e.status for e in events] == ["queued", "queued", "queued", "queued", "sent"]
    assert all("451" in (e.reason or "") for e in events[1:4])
    assert len(second_sink.received) == 1 and smtp_sink.received == []


def test_a_permanent_refusal_fails_the_send_and_costs_are_recorded(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, smtp_sink: SmtpSink
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    bob = make_customer(db, workspace.id, "bob", email="bob@example.com")
    make_template(db, workspace.id)
    add_provider(db, workspace.id, name="primary", settings=smtp_sink.settings(), cost_per_unit=0.0008, currency="EUR")
    smtp_sink.handler.rcpt_reply, smtp_sink.handler.refuse_times = "550 5.1.1 no such mailbox", 1
    refused = plan(db, workspace.id, ann)
    fine = plan(db, workspace.id, bob)
    worker.drain()
    send, _ = load(db, refused)
    assert send.status == "failed" and send.reason is not None and "550" in send.reason
    send, _ = load(db, fine)
    assert send.status == "sent" and send.cost == pytest.approx(0.0008) and send.currency == "EUR"
    assert len(smtp_sink.received) == 1


def test_a_worker_that_dies_mid_hand_off_never_causes_a_second_message(
    frozen_clock: FrozenClock, db: Database, workspace: WorkspaceKeys, smtp_sink: SmtpSink
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    make_template(db, workspace.id)
    add_provider(db, workspace.id, name="primary", settings=smtp_sink.settings())
    send_id = plan(db, workspace.id, ann)

    dying = DeliveryWorker(db, holder="dying", lease=timedelta(minutes=1))
    ids = dying.claim(clock.now())
    prepared = dying.prepare(ids, clock.now(), RoundReport())
    dying.hand_off(prepared[0])  # the server has the message; the worker "dies" before finish()
    dying.pool.close()
    assert len(smtp_sink.received) == 1
    assert load(db, send_id)[0].stage == "handing_off"

    survivor = DeliveryWorker(db, holder="survivor")
    assert survivor.drain().claimed == 0  # the lease still holds
    frozen_clock.advance(timedelta(minutes=2))
    survivor.drain()
    survivor.pool.close()
    send, _ = load(db, send_id)
    assert send.status == "sent" and send.reason is not None and send.reason.startswith("unconfirmed")
    assert len(smtp_sink.received) == 1  # never twice


def test_a_worker_that_dies_before_hand_off_leaves_the_send_to_another(
    frozen_clock: FrozenClock, db: Database, workspace: WorkspaceKeys, smtp_sink: SmtpSink
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    make_template(db, workspace.id)
    add_provider(db, workspace.id, name="primary", settings=smtp_sink.settings())
    send_id = plan(db, workspace.id, ann)
    dying = DeliveryWorker(db, holder="dying", lease=timedelta(minutes=1))
    dying.prepare(dying.claim(clock.now()), clock.now(), RoundReport())  # gated and rendered, then gone
    frozen_clock.advance(timedelta(minutes=2))
    survivor = DeliveryWorker(db, holder="survivor")
    assert survivor.drain().sent == 1
    survivor.pool.close()
    assert load(db, send_id)[0].status == "sent" and len(smtp_sink.received) == 1
    with db.session() as s:
        # The first worker's reservation was released: one contact, one interaction.
        assert len(list(s.scalars(select(Contact.id)))) == 1
        assert len(list(s.scalars(select(Interaction.id)))) == 1


def test_an_expired_send_is_skipped(
    frozen_clock: FrozenClock, db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    make_template(db, workspace.id)
    send_id = plan(db, workspace.id, ann, expires_at=frozen_clock.now() + timedelta(minutes=5))
    frozen_clock.advance(timedelta(minutes=6))
    worker.drain()
    send, _ = load(db, send_id)
    assert send.status == "skipped" and send.reason is not None and send.reason.startswith("expired")
