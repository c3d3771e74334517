"""SPEC §5 SMS: the inbound SMS webhook with keyword handling (STOP/START/HELP answered in TwiML),
and every other text matched to a customer (identity resolution) and kept as an inbound
interaction for the inbox."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

from shopkeeper.customers.models import Customer, Identity
from shopkeeper.db.session import Database
from shopkeeper.messaging import inbound
from shopkeeper.messaging.inbound import InboundMessage
from shopkeeper.messaging.models import Interaction
from shopkeeper.messaging.pipeline import DeliveryWorker
from tests.channels.sms.fake_twilio import FakeTwilio
from tests.channels.sms.test_twilio import ANN, WEBHOOKS, sms_provider, suppressions, text
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer, status_of
from tests.messaging.factories import load


@pytest.fixture
def heard() -> Iterator[list[InboundMessage]]:
    """What the inbox would be told."""
    messages: list[InboundMessage] = []
    remove = inbound.on_inbound(lambda session, message: messages.append(message))
    try:
        yield messages
    finally:
        remove()


def say(
    app: httpx.Client, twilio: FakeTwilio, provider_id: str, sender: str, body: str, **extra: str
) -> httpx.Response:
    url = f"{WEBHOOKS}/webhooks/sms/{provider_id}/inbound"
    form, headers = twilio.inbound(url, sender, body, **extra)
    return app.post(url, content=urlencode(form), headers=headers)


def interactions(db: Database, workspace_id: str) -> list[Interaction]:
    with db.session() as s:
        return list(
            s.scalars(
                select(Interaction)
                .where(Interaction.workspace_id == workspace_id)
                .order_by(Interaction.created_at, Interaction.id)
            )
        )


def test_stop_suppresses_the_number_opts_the_customer_out_and_answers_in_twiml(
    db: Database,
    workspace: WorkspaceKeys,
    worker: DeliveryWorker,
    twilio: FakeTwilio,
    app: httpx.Client,
    heard: list[InboundMessage],
) -> None:
    ann = make_customer(db, workspace.id, "ann", phone=ANN)
    provider_id = sms_provider(db, workspace.id, twilio)
    answer = say(app, twilio, provider_id, ANN, "Stop.")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/xml")
    assert answer.text.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Message>')
    assert "unsubscribed" in answer.text and "START" in answer.text
    assert suppressions(db, workspace.id) == [("sms", ANN, "stop")]
    assert status_of(db, workspace.id, ann, "sms", "*") == "opted_out"
    received, replied = interactions(db, workspace.id)
    assert (received.direction, received.channel, received.text, received.customer_id) == ("in", "sms", "Stop.", ann)
    assert received.data["keyword"] == "STOP" and received.provider == "twilio"
    assert (replied.direction, replied.status) == ("out", "sent") and replied.text is not None
    assert replied.text in answer.text
    assert heard == []  # a keyword is consent, not a conversation for the inbox

    # Even a transactional text now stays home; START lets it through again.
    blocked = text(db, workspace.id, ann, "Your code is 1234")
    worker.drain()
    assert load(db, blocked)[0].status == "suppressed"
    assert "subscribed to text messages again" in say(app, twilio, provider_id, ANN, "start").text
    assert suppressions(db, workspace.id) == []
    allowed = text(db, workspace.id, ann, "Your code is 5678")
    worker.drain()
    assert load(db, allowed)[0].status == "sent" and twilio.messages[-1]["Body"] == "Your code is 5678"


def test_help_answers_without_changing_anything(
    db: Database, workspace: WorkspaceKeys, twilio: FakeTwilio, app: httpx.Client
) -> None:
    ann = make_customer(db, workspace.id, "ann", phone=ANN)
    provider_id = sms_provider(db, workspace.id, twilio)
    answer = say(app, twilio, provider_id, ANN, "HELP")
    assert "reply STOP" in answer.text
    assert suppressions(db, workspace.id) == [] and status_of(db, workspace.id, ann, "sms", "*") == "unknown"


def test_a_text_from_an_unknown_number_becomes_a_customer_and_an_inbound_interaction(
    db: Database, workspace: WorkspaceKeys, twilio: FakeTwilio, app: httpx.Client, heard: list[InboundMessage]
) -> None:
    provider_id = sms_provider(db, workspace.id, twilio)
    answer = say(app, twilio, provider_id, "+4915112345678", "Where is my order? 📦", sid="SM-first")
    assert answer.status_code == 200 and answer.text.endswith("<Response></Response>")
    with db.session() as s:
        identity = s.scalars(select(Identity).where(Identity.workspace_id == workspace.id)).one()
        assert (identity.kind, identity.value) == ("phone", "+4915112345678")
        assert s.get(Customer, identity.customer_id) is not None
    [message] = interactions(db, workspace.id)
    assert (message.direction, message.channel, message.status) == ("in", "sms", "received")
    assert (message.text, message.customer_id, message.provider_message_id) == (
        "Where is my order? 📦",
        identity.customer_id,
        "SM-first",
    )
    assert message.data["to"] == twilio.sender and message.data["segments"] == 1
    [told] = heard
    assert (told.interaction_id, told.customer_id, told.customer_created) == (message.id, identity.customer_id, True)

    # Twilio delivers again (it did not see our answer): recognised, neither stored nor told twice.
    again = say(app, twilio, provider_id, "+4915112345678", "Where is my order? 📦", sid="SM-first")
    assert again.status_code == 200 and len(interactions(db, workspace.id)) == 1 and len(heard) == 1
    # The next text from the same number is the same customer.
    say(app, twilio, provider_id, "+4915112345678", "Hello?", sid="SM-second")
    assert [m.customer_id for m in interactions(db, workspace.id)] == [identity.customer_id] * 2
    assert heard[-1].customer_created is False


def test_a_known_number_is_matched_to_its_customer(
    db: Database, workspace: WorkspaceKeys, twilio: FakeTwilio, app: httpx.Client, heard: list[InboundMessage]
) -> None:
    ann = make_customer(db, workspace.id, "ann", phone=ANN)
    provider_id = sms_provider(db, workspace.id, twilio)
    say(app, twilio, provider_id, ANN, "please stop calling me at work")  # not a keyword: a message
    assert [(m.customer_id, m.text) for m in interactions(db, workspace.id)] == [
        (ann, "please stop calling me at work")
    ]
    assert heard[0].customer_id == ann and suppressions(db, workspace.id) == []


def test_malformed_texts_are_refused_with_400_and_store_nothing(
    db: Database, workspace: WorkspaceKeys, twilio: FakeTwilio, app: httpx.Client
) -> None:
    provider_id = sms_provider(db, workspace.id, twilio)
    assert say(app, twilio, provider_id, "not a number", "hi").status_code == 400
    url = f"{WEBHOOKS}/webhooks/sms/{provider_id}/inbound"
    form, _ = twilio.inbound(url, ANN, "hi")
    del form["From"]
    assert app.post(url, content=urlencode(form), headers=twilio.signed_headers(url, form)).status_code == 400
    assert interactions(db, workspace.id) == []


def test_another_workspaces_token_cannot_post_to_this_provider(
    db: Database, make_workspace: Any, twilio: FakeTwilio, second_twilio: FakeTwilio, app: httpx.Client
) -> None:
    a, b = make_workspace("A"), make_workspace("B")
    provider_a = sms_provider(db, a.id, twilio)
    sms_provider(db, b.id, second_twilio)  # B's own account: a token of its own
    url = f"{WEBHOOKS}/webhooks/sms/{provider_a}/inbound"
    form, headers = second_twilio.inbound(url, ANN, "STOP")
    assert app.post(url, content=urlencode(form), headers=headers).status_code == 403
    assert suppressions(db, a.id) == [] and suppressions(db, b.id) == []
