"""SPEC §5: outbound webhooks, HMAC-signed, through the delivery pipeline — to a real HTTP
receiver on loopback. 2xx is delivered; 5xx, 429 and timeouts are retried with backoff and the
same Shopkeeper-Id; 410 disables the endpoint; other 4xx fail; the SSRF guard refuses loopback
unless the operator allows it."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from sqlalchemy import select

from shopkeeper import clock
from shopkeeper.auth.models import AuditEntry
from shopkeeper.channels.webhook.events import publish
from shopkeeper.channels.webhook.signature import SignatureError, verify
from shopkeeper.clock import FrozenClock
from shopkeeper.db.session import Database
from shopkeeper.messaging.models import Interaction, Send, WebhookEndpoint
from shopkeeper.messaging.pipeline import DeliveryWorker
from tests.channels.webhook.factories import make_endpoint, plan_webhook
from tests.channels.webhook.receiver import Receiver
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer
from tests.messaging.factories import add_provider, load, make_template, plan

pytestmark = pytest.mark.usefixtures("allow_private")


def test_a_webhook_is_posted_signed_and_the_receiver_can_verify_it(
    frozen_clock: FrozenClock, db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, receiver: Receiver
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    endpoint = make_endpoint(db, workspace.id, receiver.url)
    send_id = plan_webhook(db, workspace.id, ann, endpoint.id, order={"id": 7, "note": 'say "hi" {{ }}'})
    report = worker.drain()
    assert report.sent == 1, load(db, send_id)[0].reason
    send, events = load(db, send_id)
    assert send.status == "delivered" and send.provider == "webhook"
    assert [e.status for e in events] == ["queued", "sent", "delivered"]

    [request] = receiver.requests
    assert request.path == "/hooks" and request.headers["content-type"] == "application/json"
    assert request.headers["shopkeeper-id"] == send_id
    body = orjson.loads(request.body)
    # The customer's data went through the json filter: still valid JSON, quotes and braces intact.
    assert body == {
        "event": "order.shipped",
        "customer": ann,
        "name": None,
        "order": {"id": 7, "note": 'say "hi" {{ }}'},
    }
    now = frozen_clock.now().timestamp()
    assert request.headers["shopkeeper-timestamp"] == str(int(now))
    header = request.headers["shopkeeper-signature"]
    assert verify(endpoint.secret, header, request.body, tolerance=300, now=now) == int(now)
    with pytest.raises(SignatureError):
        verify(endpoint.secret, header, request.body.replace(b"7", b"8"), now=now)
    with pytest.raises(SignatureError):
        verify(endpoint.secret, header, request.body, tolerance=300, now=now + 301)
    # The secret never reaches the send, its history or the interaction.
    with db.session() as s:
        interaction = s.get(Interaction, send.interaction_id)
        assert interaction is not None and interaction.channel == "webhook"
        stored = repr((send.data, [e.data for e in events], interaction.data, interaction.text))
        assert endpoint.secret not in stored


def test_a_500_is_retried_with_backoff_and_the_same_shopkeeper_id(
    frozen_clock: FrozenClock, db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, receiver: Receiver
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    endpoint = make_endpoint(db, workspace.id, receiver.url)
    send_id = plan_webhook(db, workspace.id, ann, endpoint.id, order={"id": 1})
    receiver.answer(500, 429)
    assert worker.drain().retried == 1
    send, events = load(db, send_id)
    assert send.status == "queued" and events[-1].reason is not None and "500" in events[-1].reason
    frozen_clock.advance(timedelta(minutes=1))  # past the first backoff (at most 30 s)
    assert worker.drain().retried == 1  # 429: temporary too
    assert load(db, send_id)[0].status == "queued"
    frozen_clock.advance(timedelta(minutes=2))
    assert worker.drain().sent == 1
    send, _ = load(db, send_id)
    assert send.status == "delivered" and send.attempts == 3
    assert len(receiver.requests) == 3
    assert {r.headers["shopkeeper-id"] for r in receiver.requests} == {send_id}
    assert {r.body for r in receiver.requests} == {receiver.requests[0].body}
    # Each attempt is signed at its own time, and each signature verifies at that time.
    for request in receiver.requests:
        at = int(request.headers["shopkeeper-timestamp"])
        assert verify(endpoint.secret, request.headers["shopkeeper-signature"], request.body, now=at) == at
    assert len({r.headers["shopkeeper-timestamp"] for r in receiver.requests}) == 3


def test_a_410_disables_the_endpoint_and_later_sends_to_it_fail_without_a_request(
    frozen_clock: FrozenClock, db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, receiver: Receiver
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    endpoint = make_endpoint(db, workspace.id, receiver.url)
    first = plan_webhook(db, workspace.id, ann, endpoint.id, order={"id": 1})
    receiver.answer(410)
    assert worker.drain().failed == 1
    send, _ = load(db, first)
    assert send.status == "failed" and send.reason is not None and "410" in send.reason
    with db.session() as s:
        row = s.get(WebhookEndpoint, endpoint.id)
        assert row is not None and row.enabled is False
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "webhook_endpoint.disable"))
        assert entry is not None and entry.actor == "system:webhooks" and entry.subject_id == endpoint.id
        assert entry.details["send_id"] == first
    second = plan_webhook(db, workspace.id, ann, endpoint.id, order={"id": 2})
    worker.drain()
    send, _ = load(db, second)
    assert send.status == "failed" and send.reason is not None and "disabled" in send.reason
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("status", [400, 404, 301])
def test_other_refusals_fail_the_send_at_once(
    status: int, db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, receiver: Receiver
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    endpoint = make_endpoint(db, workspace.id, receiver.url)
    send_id = plan_webhook(db, workspace.id, ann, endpoint.id, order={"id": 1})
    receiver.answer(status)
    assert worker.drain().failed == 1
    send, _ = load(db, send_id)
    assert send.status == "failed" and send.reason is not None and str(status) in send.reason
    with db.session() as s:
        row = s.get(WebhookEndpoint, endpoint.id)
        assert row is not None and row.enabled  # only 410 disables


def test_an_unreachable_receiver_is_retried(
    frozen_clock: FrozenClock, db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, receiver: Receiver
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    endpoint = make_endpoint(db, workspace.id, receiver.url)
    send_id = plan_webhook(db, workspace.id, ann, endpoint.id, order={"id": 1})
    receiver.stop()  # nothing listens on the port now: connection refused
    assert worker.drain().retried == 1
    send, events = load(db, send_id)
    assert send.status == "queued" and events[-1].reason is not None and "cannot reach" in events[-1].reason


def test_a_receiver_that_drips_its_answer_is_cut_off_at_the_time_limit_and_retried(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, receiver: Receiver
) -> None:
    """The time limit is for the whole request: an answer trickling in a byte at a time (each
    read well within a per-read timeout) still ends at it, instead of holding the worker."""
    add_provider(db, workspace.id, channel="webhook", type="webhook", name="hooks", settings={"timeout": 1})
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    endpoint = make_endpoint(db, workspace.id, receiver.url)
    send_id = plan_webhook(db, workspace.id, ann, endpoint.id, order={"id": 1})
    receiver.drip = 0.05  # 600 bytes: 30 s in all, a byte every 50 ms
    assert worker.drain().retried == 1
    send, events = load(db, send_id)
    assert send.status == "queued" and events[-1].reason is not None and "within 1 s" in events[-1].reason
    assert len(receiver.requests) == 1


def test_a_body_that_is_not_json_goes_as_text(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, receiver: Receiver
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    endpoint = make_endpoint(db, workspace.id, receiver.url)
    plan_webhook(db, workspace.id, ann, endpoint.id, content={"webhook": {"body": "order={{ data.order }}"}}, order=5)
    assert worker.drain().sent == 1
    [request] = receiver.requests
    assert request.body == b"order=5" and request.headers["content-type"] == "text/plain; charset=utf-8"


def test_deliveries_reuse_one_connection(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, receiver: Receiver
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    endpoint = make_endpoint(db, workspace.id, receiver.url)
    for n in range(5):
        plan_webhook(db, workspace.id, ann, endpoint.id, order={"id": n})
    assert worker.drain().sent == 5
    assert len(receiver.requests) == 5
    assert len({r.connection for r in receiver.requests}) == 1  # one client port: one TCP connection


def test_a_send_without_an_endpoint_or_to_a_deleted_one_fails_with_the_reason(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, receiver: Receiver
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    nowhere = plan_webhook(db, workspace.id, ann, "whe_missing", order={"id": 1})
    with db.session(write=True) as s:
        from shopkeeper.messaging import send_service

        unnamed, _ = send_service.enqueue(
            s,
            workspace.id,
            customer_id=ann,
            channel="webhook",
            content={"webhook": {"body": "{}"}},
            now=clock.now(),
        )
    worker.drain()
    assert "no webhook endpoint" in (load(db, nowhere)[0].reason or "")
    assert "data.endpoint_id" in (load(db, unnamed.id)[0].reason or "")
    assert receiver.requests == []


def test_status_changes_are_published_to_subscribed_endpoints(
    frozen_clock: FrozenClock, db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, receiver: Receiver
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    make_template(db, workspace.id)
    subscribed = make_endpoint(db, workspace.id, receiver.url, events=["send.status_changed"])
    make_endpoint(db, workspace.id, receiver.url + "/calls", events=["call.recorded"])  # not this event
    email = plan(db, workspace.id, ann)
    worker.drain()  # the email (dev provider): sent, delivered → two events, delivered in turn
    assert load(db, email)[0].status == "delivered"
    bodies = [orjson.loads(r.body) for r in receiver.requests]
    assert [b["type"] for b in bodies] == ["send.status_changed"] * 2
    assert [(b["data"]["previous_status"], b["data"]["status"]) for b in bodies] == [
        ("queued", "sent"),
        ("sent", "delivered"),
    ]
    assert {b["data"]["send_id"] for b in bodies} == {email}
    assert all(b["data"]["customer_id"] == ann and b["workspace_id"] == workspace.id for b in bodies)
    assert [r.path for r in receiver.requests] == ["/hooks", "/hooks"]
    assert {r.headers["shopkeeper-event"] for r in receiver.requests} == {"send.status_changed"}
    assert len({b["id"] for b in bodies}) == 2
    for request in receiver.requests:
        verify(
            subscribed.secret, request.headers["shopkeeper-signature"], request.body, now=frozen_clock.now().timestamp()
        )
    with db.session() as s:
        webhook_sends = list(s.scalars(select(Send).where(Send.channel == "webhook")))
        # The webhook sends' own moves (sent, delivered) are not published: no feedback loop.
        assert len(webhook_sends) == 2 and all(w.status == "delivered" for w in webhook_sends)
        assert all(w.source == "system" for w in webhook_sends)


def test_publishing_is_idempotent_per_endpoint_and_event_id(
    db: Database, workspace: WorkspaceKeys, receiver: Receiver
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    first = make_endpoint(db, workspace.id, receiver.url, events=["call.recorded"])
    second = make_endpoint(db, workspace.id, receiver.url, events=["*"])
    make_endpoint(db, workspace.id, receiver.url, events=["send.status_changed"])
    with db.session(write=True) as s:
        planned = publish(
            s, workspace.id, "call.recorded", {"n": 1}, customer_id=ann, now=clock.now(), event_id="evt_x"
        )
        again = publish(s, workspace.id, "call.recorded", {"n": 1}, customer_id=ann, now=clock.now(), event_id="evt_x")
    assert sorted(p.data["endpoint_id"] for p in planned) == sorted([first.id, second.id])
    assert again == []
    with db.session(write=True) as s:
        later = publish(s, workspace.id, "call.recorded", {"n": 1}, customer_id=ann, now=clock.now(), event_id="evt_x")
        assert later == []
        assert len(list(s.scalars(select(Send.id).where(Send.channel == "webhook")))) == 2
