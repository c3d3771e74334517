"""SPEC §3/§4: subscription changes carried by identify traits, applied during ingestion — and a
bad entry never costs the batch its events."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from shopkeeper.consent.double_opt_in import OptInRequest, on_opt_in_requested
from shopkeeper.customers.models import Identity
from shopkeeper.db.session import Database
from shopkeeper.events.models import Event
from tests.conftest import WorkspaceKeys
from tests.consent.factories import consent_log, make_customer, make_topic, status_of
from tests.helpers import ingest, message

CONTEXT = {"ip": "192.0.2.44", "userAgent": "ShopApp/3.2 (iPhone)"}


@pytest.fixture
def topics(db: Database, workspace: WorkspaceKeys) -> None:
    make_topic(db, workspace.id, "newsletter", channels=("email", "sms"))
    make_topic(db, workspace.id, "offers", channels=("email",))
    make_topic(db, workspace.id, "digest", channels=("email",), double_opt_in=True)


@pytest.fixture
def requests() -> Iterator[list[OptInRequest]]:
    seen: list[OptInRequest] = []
    remove = on_opt_in_requested(lambda _session, request: seen.append(request))
    try:
        yield seen
    finally:
        remove()


def identify(db: Database, ws: str, user_id: str, traits: dict[str, Any], **fields: Any) -> None:
    ingest(db, ws, [message("identify", userId=user_id, traits=traits, context=CONTEXT, **fields)])


def customer_of(db: Database, ws: str, kind: str, value: str) -> str:
    with db.session() as s:
        found = s.scalar(
            select(Identity.customer_id).where(
                Identity.workspace_id == ws, Identity.kind == kind, Identity.value == value
            )
        )
    assert found is not None
    return found


def test_subscriptions_in_traits_change_statuses_with_proof(
    db: Database, workspace: WorkspaceKeys, topics: None
) -> None:
    subscriptions = {"email": {"newsletter": "opted_in", "offers": False}, "sms": {"newsletter": True}}
    identify(db, workspace.id, "u1", {"email": "u1@example.com", "subscriptions": subscriptions})
    customer = customer_of(db, workspace.id, "user_id", "u1")
    assert status_of(db, workspace.id, customer, "email", "newsletter") == "opted_in"
    assert status_of(db, workspace.id, customer, "email", "offers") == "opted_out"
    assert status_of(db, workspace.id, customer, "sms", "newsletter") == "opted_in"
    log = consent_log(db, workspace.id, customer)
    assert len(log) == 3
    assert {(e.source, e.ip, e.user_agent) for e in log} == {("identify", CONTEXT["ip"], CONTEXT["userAgent"])}

    # The same traits on the next identify change nothing and prove nothing new.
    identify(db, workspace.id, "u1", {"subscriptions": subscriptions})
    assert len(consent_log(db, workspace.id, customer)) == 3
    identify(db, workspace.id, "u1", {"subscriptions": {"email": {"newsletter": "unknown"}}})
    assert status_of(db, workspace.id, customer, "email", "newsletter") == "unknown"


def test_the_whole_channel_and_customer_io_unsubscribed(db: Database, workspace: WorkspaceKeys, topics: None) -> None:
    identify(db, workspace.id, "u2", {"email": "u2@example.com", "unsubscribed": True})
    customer = customer_of(db, workspace.id, "user_id", "u2")
    assert status_of(db, workspace.id, customer, "email", "*") == "opted_out"
    identify(db, workspace.id, "u2", {"unsubscribed": False})
    assert status_of(db, workspace.id, customer, "email", "*") == "unknown"
    identify(db, workspace.id, "u2", {"subscriptions": {"sms": {"*": "opted_out"}}})
    assert status_of(db, workspace.id, customer, "sms", "*") == "opted_out"
    identify(db, workspace.id, "u2", {"subscriptions": {"sms": {"*": True}}})  # lifts the channel opt-out
    assert status_of(db, workspace.id, customer, "sms", "*") == "unknown"
    assert [(e.channel, e.status) for e in consent_log(db, workspace.id, customer)] == [
        ("email", "opted_out"),
        ("email", "unknown"),
        ("sms", "opted_out"),
        ("sms", "unknown"),
    ]


def test_a_double_opt_in_topic_goes_to_pending(
    db: Database, workspace: WorkspaceKeys, topics: None, requests: list[OptInRequest]
) -> None:
    identify(db, workspace.id, "u3", {"email": "u3@example.com", "subscriptions": {"email": {"digest": "opted_in"}}})
    customer = customer_of(db, workspace.id, "user_id", "u3")
    assert status_of(db, workspace.id, customer, "email", "digest") == "pending"
    (request,) = requests
    assert (request.customer_id, request.topic, request.status) == (customer, "digest", "pending")
    (event,) = consent_log(db, workspace.id, customer)
    assert (event.source, event.status, event.ip) == ("identify", "pending", CONTEXT["ip"])
    # Sent again with every identify: no second request, no second event.
    identify(db, workspace.id, "u3", {"subscriptions": {"email": {"digest": "opted_in"}}})
    assert len(requests) == 1 and len(consent_log(db, workspace.id, customer)) == 1


def test_invalid_entries_are_skipped_and_logged_and_the_rest_applies(
    db: Database, workspace: WorkspaceKeys, topics: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shopkeeper.consent.from_traits")
    subscriptions = {
        "fax": {"newsletter": "opted_in"},  # no such channel
        "email": {"nonexistent": "opted_in", "newsletter": "maybe", "offers": "opted_in"},
        "sms": {"offers": "opted_in"},  # offers is not sent by SMS
        "push": ["not", "an", "object"],
    }
    identify(db, workspace.id, "u4", {"email": "u4@example.com", "subscriptions": subscriptions, "unsubscribed": "yes"})
    identify(db, workspace.id, "u5", {"subscriptions": "all of them"})
    customer = customer_of(db, workspace.id, "user_id", "u4")
    assert [(e.channel, e.topic, e.status) for e in consent_log(db, workspace.id)] == [("email", "offers", "opted_in")]
    skipped = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    for what in ("subscriptions.fax", "email.nonexistent", "email.newsletter", "sms.offers", "subscriptions.push"):
        assert what in skipped
    assert "unsubscribed" in skipped and "subscriptions (expected an object" in skipped
    with db.session() as s:
        stored = s.scalar(select(func.count()).select_from(Event).where(Event.workspace_id == workspace.id))
    assert stored == 2 and customer


def test_a_batch_over_http_keeps_every_event_whatever_the_traits(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, topics: None
) -> None:
    batch = [
        {"type": "identify", "userId": "h1", "traits": {"subscriptions": {"email": {"newsletter": "opted_in"}}}},
        {"type": "identify", "userId": "h2", "traits": {"subscriptions": {"email": {"newsletter": 42}}}},
        {"type": "identify", "userId": "h3", "traits": {"subscriptions": None, "unsubscribed": [1]}},
        {"type": "track", "userId": "h1", "event": "Viewed", "context": {"traits": {"unsubscribed": True}}},
    ]
    r = app_client.post("/v1/batch", json={"batch": batch}, auth=(workspace.write_key, ""))
    assert r.status_code == 200, r.text
    with db.session() as s:
        stored = s.scalar(select(func.count()).select_from(Event).where(Event.workspace_id == workspace.id))
    assert stored == 4
    h1 = customer_of(db, workspace.id, "user_id", "h1")
    assert status_of(db, workspace.id, h1, "email", "newsletter") == "opted_in"
    # Only identify events speak for subscriptions: the track's context traits changed nothing.
    assert status_of(db, workspace.id, h1, "email", "*") == "unknown"
    assert [e.customer_id for e in consent_log(db, workspace.id)] == [h1]


def test_a_profile_merged_in_the_same_batch_gives_its_consent_to_the_survivor(
    db: Database, workspace: WorkspaceKeys, topics: None
) -> None:
    older = make_customer(db, workspace.id, "older", email="older@example.com")
    ingest(
        db,
        workspace.id,
        [
            message("identify", anonymousId="anon-x", traits={"subscriptions": {"email": {"offers": "opted_in"}}}),
            message("identify", anonymousId="anon-x", traits={"email": "older@example.com"}),
        ],
    )
    assert customer_of(db, workspace.id, "anonymous_id", "anon-x") == older  # the two merged
    assert status_of(db, workspace.id, older, "email", "offers") == "opted_in"
    (event,) = consent_log(db, workspace.id)
    assert event.customer_id == older
