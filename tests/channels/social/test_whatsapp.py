"""SPEC §5 messaging apps, WhatsApp-shaped: texts out through the Cloud API, and the signed
webhook (X-Hub-Signature-256, GET handshake) bringing customers' messages in and statuses back."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from shopkeeper.customers.models import Customer, Identity
from shopkeeper.db.session import Database
from shopkeeper.messaging.inbound import InboundMessage
from shopkeeper.messaging.models import Interaction
from shopkeeper.messaging.pipeline import DeliveryWorker
from tests.channels.social.fakes import FakeGraph
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer
from tests.messaging.factories import add_provider, load, plan

ANN = "+33612345678"


def whatsapp_provider(db: Database, workspace_id: str, graph: FakeGraph, name: str = "whatsapp", **extra: Any) -> str:
    return add_provider(
        db, workspace_id, channel="whatsapp", type="cloud_api", name=name, settings=graph.whatsapp_settings(**extra)
    )


def notify(app: httpx.Client, provider_id: str, signed: tuple[bytes, dict[str, str]]) -> httpx.Response:
    body, headers = signed
    return app.post(f"/webhooks/whatsapp/{provider_id}", content=body, headers=headers)


def inbound_rows(db: Database, workspace_id: str) -> list[Interaction]:
    with db.session() as s:
        return list(
            s.scalars(
                select(Interaction)
                .where(Interaction.workspace_id == workspace_id, Interaction.direction == "in")
                .order_by(Interaction.created_at, Interaction.id)
            )
        )


def test_a_text_goes_out_through_the_cloud_api_and_statuses_come_back(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, graph: FakeGraph, app: httpx.Client
) -> None:
    ann = make_customer(db, workspace.id, "ann", phone=ANN)
    provider_id = whatsapp_provider(db, workspace.id, graph)
    send_id = plan(db, workspace.id, ann, channel="whatsapp", content={"whatsapp": {"text": "Your order shipped 🚚"}})
    assert worker.drain().sent == 1, load(db, send_id)[0].reason
    [payload] = graph.sent
    assert payload["messaging_product"] == "whatsapp" and payload["to"] == "33612345678"
    assert payload["type"] == "text" and payload["text"]["body"] == "Your order shipped 🚚"
    assert payload["biz_opaque_callback_data"] == send_id
    send, _ = load(db, send_id)
    assert (send.status, send.provider_message_id) == ("sent", payload["_id"])

    assert (
        notify(
            app, provider_id, graph.signed(graph.whatsapp_status(payload["_id"], "delivered", "33612345678"))
        ).json()["reports"]
        == 1
    )
    assert load(db, send_id)[0].status == "delivered"
    notify(app, provider_id, graph.signed(graph.whatsapp_status(payload["_id"], "read", "33612345678")))
    send, events = load(db, send_id)
    assert send.status == "opened" and events[-1].data["provider_status"] == "read"


def test_a_status_that_overtakes_the_worker_is_matched_by_the_send_id_it_echoes(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, graph: FakeGraph, app: httpx.Client
) -> None:
    ann = make_customer(db, workspace.id, "ann", phone=ANN)
    provider_id = whatsapp_provider(db, workspace.id, graph)
    codes: list[int] = []
    graph.before_answer = lambda payload, message_id: codes.append(
        notify(
            app,
            provider_id,
            graph.signed(
                graph.whatsapp_status(message_id, "delivered", payload["to"], ref=payload["biz_opaque_callback_data"])
            ),
        ).status_code
    )
    send_id = plan(db, workspace.id, ann, channel="whatsapp", content={"whatsapp": {"text": "Hi"}})
    worker.drain()
    assert codes == [200] and load(db, send_id)[0].status == "delivered"


@pytest.mark.parametrize(("code", "status"), [(131026, "bounced"), (131047, "failed")])
def test_a_failed_status_is_a_bounce_when_the_number_cannot_receive_whatsapp(
    db: Database,
    workspace: WorkspaceKeys,
    worker: DeliveryWorker,
    graph: FakeGraph,
    app: httpx.Client,
    code: int,
    status: str,
) -> None:
    ann = make_customer(db, workspace.id, "ann", phone=ANN)
    provider_id = whatsapp_provider(db, workspace.id, graph)
    send_id = plan(db, workspace.id, ann, channel="whatsapp", content={"whatsapp": {"text": "Hi"}})
    worker.drain()
    errors = [{"code": code, "title": "Message undeliverable"}]
    notify(
        app,
        provider_id,
        graph.signed(graph.whatsapp_status(graph.sent[0]["_id"], "failed", "33612345678", errors=errors)),
    )
    send, _ = load(db, send_id)
    assert send.status == status and str(code) in (send.reason or "")


def test_a_message_from_an_unknown_number_becomes_a_customer_and_an_inbound_interaction(
    db: Database, workspace: WorkspaceKeys, graph: FakeGraph, app: httpx.Client, heard: list[InboundMessage]
) -> None:
    provider_id = whatsapp_provider(db, workspace.id, graph)
    signed = graph.signed(
        graph.whatsapp_message("4915112345678", "Is the blue one back in stock?", message_id="wamid.A")
    )
    answer = notify(app, provider_id, signed)
    assert answer.status_code == 200 and answer.json()["messages"] == 1
    with db.session() as s:
        identity = s.scalars(select(Identity).where(Identity.workspace_id == workspace.id)).one()
        customer = s.get(Customer, identity.customer_id)
    assert (identity.kind, identity.value) == ("phone", "+4915112345678")
    assert customer is not None and customer.traits == {"name": "Kerry Fisher"}
    [message] = inbound_rows(db, workspace.id)
    assert (message.channel, message.text, message.provider_message_id) == (
        "whatsapp",
        "Is the blue one back in stock?",
        "wamid.A",
    )
    assert message.data["type"] == "text" and message.address == "+4915112345678"
    assert [(m.interaction_id, m.customer_created) for m in heard] == [(message.id, True)]

    # A repeat delivery is recognised; a message to a number this workspace did not configure is
    # someone else's and is not stored.
    assert notify(app, provider_id, signed).json()["repeats"] == 1
    other = graph.signed(graph.whatsapp_message("4915112345678", "wrong number", phone_number_id="999"))
    assert notify(app, provider_id, other).json()["ignored"] == 1
    assert len(inbound_rows(db, workspace.id)) == 1 and len(heard) == 1


def test_bad_signatures_are_refused_and_malformed_bodies_are_400(
    db: Database, workspace: WorkspaceKeys, graph: FakeGraph, app: httpx.Client
) -> None:
    provider_id = whatsapp_provider(db, workspace.id, graph)
    document = graph.whatsapp_message("4915112345678", "hello")
    body, headers = graph.signed(document)
    url = f"/webhooks/whatsapp/{provider_id}"
    _, wrong = graph.signed(document, secret="another-apps-secret")
    assert app.post(url, content=body, headers=wrong).status_code == 403
    assert app.post(url, content=body, headers={"Content-Type": "application/json"}).status_code == 403
    assert app.post(url, content=body.replace(b"hello", b"HELLO"), headers=headers).status_code == 403
    assert app.post(url, content=body, headers={**headers, "X-Hub-Signature-256": "sha1=abc"}).status_code == 403
    assert inbound_rows(db, workspace.id) == []

    malformed = [
        b"{not json",
        b"[1, 2]",
        b'{"object": "page", "entry": []}',
        b'{"object": "whatsapp_business_account", "entry": 5}',
        b'{"object": "whatsapp_business_account", "entry": [{"changes": {"value": 1}}]}',
    ]
    for bad in malformed:
        assert app.post(url, content=bad, headers=graph.signature(bad)).status_code == 400, bad
    assert app.post("/webhooks/whatsapp/prv_unknown", content=body, headers=headers).status_code == 404


def test_the_subscription_handshake_echoes_the_challenge_only_for_the_right_token(
    db: Database, workspace: WorkspaceKeys, graph: FakeGraph, app: httpx.Client
) -> None:
    provider_id = whatsapp_provider(db, workspace.id, graph)
    url = f"/webhooks/whatsapp/{provider_id}"
    params = {"hub.mode": "subscribe", "hub.verify_token": graph.verify_token, "hub.challenge": "1158201444"}
    answer = app.get(url, params=params)
    assert (answer.status_code, answer.text) == (200, "1158201444")
    assert app.get(url, params={**params, "hub.verify_token": "guess"}).status_code == 403
    assert app.get(url, params={**params, "hub.mode": "unsubscribe"}).status_code == 403
    no_secret = whatsapp_provider(db, workspace.id, graph, name="unverifiable", verify_token=None, app_secret=None)
    assert app.get(f"/webhooks/whatsapp/{no_secret}", params=params).status_code == 403
    assert notify(app, no_secret, graph.signed(graph.whatsapp_message("4915112345678", "hi"))).status_code == 403


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [(400, 131047, "failed"), (400, 130429, "retried"), (500, 131000, "retried"), (401, 190, "retried")],
)
def test_graph_refusals_are_sorted_into_retries_and_failures(
    db: Database,
    workspace: WorkspaceKeys,
    worker: DeliveryWorker,
    graph: FakeGraph,
    status: int,
    code: int,
    outcome: str,
) -> None:
    ann = make_customer(db, workspace.id, "ann", phone=ANN)
    whatsapp_provider(db, workspace.id, graph)
    graph.refuse(status, code, "refused")
    send_id = plan(db, workspace.id, ann, channel="whatsapp", content={"whatsapp": {"text": "Hi"}})
    assert getattr(worker.drain(), outcome) == 1
    send, events = load(db, send_id)
    assert send.status == ("failed" if outcome == "failed" else "queued") and str(code) in (events[-1].reason or "")
