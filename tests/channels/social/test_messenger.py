"""SPEC §5 messaging apps, Messenger-shaped: a customer writes to the page (identified by their
page-scoped id), the reply goes out through the Send API, deliveries and reads come back on the
signed page webhook."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select

from shopkeeper.clock import FrozenClock
from shopkeeper.customers.models import Identity
from shopkeeper.db.session import Database
from shopkeeper.messaging.inbound import InboundMessage
from shopkeeper.messaging.models import Interaction
from shopkeeper.messaging.pipeline import DeliveryWorker
from tests.channels.social.fakes import FakeGraph
from tests.conftest import WorkspaceKeys
from tests.messaging.factories import add_provider, load, plan

PSID = "6578932145678901"


def messenger_provider(db: Database, workspace_id: str, graph: FakeGraph, **extra: object) -> str:
    return add_provider(
        db, workspace_id, channel="messenger", type="graph_api", name="page", settings=graph.messenger_settings(**extra)
    )


def notify(app: httpx.Client, provider_id: str, signed: tuple[bytes, dict[str, str]]) -> httpx.Response:
    body, headers = signed
    return app.post(f"/webhooks/messenger/{provider_id}", content=body, headers=headers)


def test_a_customer_writes_to_the_page_gets_a_reply_and_its_delivery_and_reading_are_recorded(
    frozen_clock: FrozenClock,
    db: Database,
    workspace: WorkspaceKeys,
    worker: DeliveryWorker,
    graph: FakeGraph,
    app: httpx.Client,
    heard: list[InboundMessage],
) -> None:
    provider_id = messenger_provider(db, workspace.id, graph)
    hello = graph.messenger_event(PSID, message={"mid": "m_in_1", "text": "Do you ship to Norway?"})
    echo = graph.messenger_event(graph.page_id, message={"mid": "m_echo", "text": "ours", "is_echo": True})
    answer = notify(app, provider_id, graph.signed(graph.messenger(hello, echo)))
    assert answer.status_code == 200 and answer.json()["messages"] == 1
    with db.session() as s:
        identity = s.scalars(select(Identity).where(Identity.workspace_id == workspace.id)).one()
        [received] = s.scalars(select(Interaction).where(Interaction.workspace_id == workspace.id))
    assert (identity.kind, identity.value) == ("messenger_psid", PSID)
    assert (received.channel, received.direction, received.text) == ("messenger", "in", "Do you ship to Norway?")
    assert [m.customer_id for m in heard] == [identity.customer_id]

    reply = plan(db, workspace.id, identity.customer_id, channel="messenger", content={"messenger": {"text": "Yes!"}})
    assert worker.drain().sent == 1, load(db, reply)[0].reason
    [payload] = graph.sent
    assert payload["recipient"] == {"id": PSID} and payload["messaging_type"] == "RESPONSE"
    assert payload["message"]["text"] == "Yes!"
    assert load(db, reply)[0].provider_message_id == payload["_id"]

    delivered = graph.messenger_event(PSID, delivery={"mids": [payload["_id"]], "watermark": 0})
    notify(app, provider_id, graph.signed(graph.messenger(delivered)))
    assert load(db, reply)[0].status == "delivered"
    # A read receipt names no message: everything sent before its watermark has been read.
    frozen_clock.advance(timedelta(minutes=1))
    watermark = int(frozen_clock.now().timestamp() * 1000)
    notify(app, provider_id, graph.signed(graph.messenger(graph.messenger_event(PSID, read={"watermark": watermark}))))
    assert load(db, reply)[0].status == "opened"


def test_a_read_receipt_before_the_send_does_not_open_it(
    frozen_clock: FrozenClock,
    db: Database,
    workspace: WorkspaceKeys,
    worker: DeliveryWorker,
    graph: FakeGraph,
    app: httpx.Client,
) -> None:
    provider_id = messenger_provider(db, workspace.id, graph)
    notify(
        app,
        provider_id,
        graph.signed(graph.messenger(graph.messenger_event(PSID, message={"mid": "m1", "text": "hi"}))),
    )
    with db.session() as s:
        customer_id = s.scalars(select(Identity.customer_id)).one()
    earlier = int((frozen_clock.now() - timedelta(minutes=5)).timestamp() * 1000)
    reply = plan(db, workspace.id, customer_id, channel="messenger", content={"messenger": {"text": "Hello"}})
    worker.drain()
    notify(app, provider_id, graph.signed(graph.messenger(graph.messenger_event(PSID, read={"watermark": earlier}))))
    assert load(db, reply)[0].status == "sent"


def test_a_message_tag_sends_outside_the_24_hour_window(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, graph: FakeGraph, app: httpx.Client
) -> None:
    provider_id = messenger_provider(db, workspace.id, graph, tag="POST_PURCHASE_UPDATE")
    notify(
        app,
        provider_id,
        graph.signed(graph.messenger(graph.messenger_event(PSID, message={"mid": "m1", "text": "hi"}))),
    )
    with db.session() as s:
        customer_id = s.scalars(select(Identity.customer_id)).one()
    plan(db, workspace.id, customer_id, channel="messenger", content={"messenger": {"text": "Shipped"}})
    worker.drain()
    assert (graph.sent[0]["messaging_type"], graph.sent[0]["tag"]) == ("MESSAGE_TAG", "POST_PURCHASE_UPDATE")


def test_postbacks_are_messages_and_bad_signatures_are_refused(
    db: Database, workspace: WorkspaceKeys, graph: FakeGraph, app: httpx.Client
) -> None:
    provider_id = messenger_provider(db, workspace.id, graph)
    pressed = graph.messenger_event(PSID, postback={"mid": "m_pb", "title": "Track my order", "payload": "TRACK"})
    document = graph.messenger(pressed)
    body, _ = graph.signed(document)
    forged = graph.signature(body, secret="not-the-app-secret")
    assert app.post(f"/webhooks/messenger/{provider_id}", content=body, headers=forged).status_code == 403
    assert notify(app, provider_id, graph.signed(document)).json()["messages"] == 1
    with db.session() as s:
        [row] = s.scalars(select(Interaction).where(Interaction.workspace_id == workspace.id))
    assert (row.text, row.data["payload"], row.data["type"]) == ("Track my order", "TRACK", "postback")
    params = {"hub.mode": "subscribe", "hub.verify_token": graph.verify_token, "hub.challenge": "42"}
    assert app.get(f"/webhooks/messenger/{provider_id}", params=params).text == "42"
    # A WhatsApp-shaped notification is not a page's.
    assert notify(app, provider_id, graph.signed(graph.whatsapp_message("4915112345678", "hi"))).status_code == 400
