"""SPEC §5 (voice/call-centre): call records in — who, when, duration, disposition,
transcript/notes — become interactions on the customer's timeline; the customer is found by
identity resolution (made when unknown); a repeat of an external id is stored once; bad input
names its field and writes nothing."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from shopkeeper.channels.webhook.signature import verify
from shopkeeper.customers.models import Customer, Identity
from shopkeeper.db.session import Database
from shopkeeper.messaging.models import Interaction, Send
from tests.channels.webhook.receiver import Receiver
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer


def _auth(keys: WorkspaceKeys) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys.secret_key}"}


def _call(**fields: Any) -> dict[str, Any]:
    call: dict[str, Any] = {
        "external_id": "aircall-1001",
        "direction": "in",
        "customer": {"phone": "+44 20 7946 0958"},
        "agent": {"name": "Sam"},
        "started_at": "2026-02-27T09:30:00Z",
        "duration_seconds": 252,
        "disposition": "answered",
        "transcript": "Customer: my parcel is late. Sam: it ships today.",
        "notes": "Promised a call back on Monday",
        "recording_url": "https://calls.example.com/rec/1001.mp3",
        "source": "aircall",
    }
    call.update(fields)
    return call


def _count(db: Database, model: Any) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_a_call_from_an_unknown_number_makes_a_customer_and_joins_the_timeline(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    r = app_client.post("/api/v1/calls", headers=_auth(workspace), json=_call())
    assert r.status_code == 201, r.text
    call = r.json()
    assert call["created"] is True and call["disposition"] == "answered" and call["direction"] == "in"
    assert call["subject"] == "Call answered, 4 min 12 s, with Sam"
    with db.session() as s:
        identity = s.scalar(select(Identity).where(Identity.kind == "phone"))
        assert identity is not None and identity.value == "+442079460958"
        assert identity.customer_id == call["customer_id"]
        interaction = s.get(Interaction, call["id"])
        assert interaction is not None
        assert (interaction.channel, interaction.direction, interaction.status) == ("voice", "in", "answered")
        assert interaction.text == "Customer: my parcel is late. Sam: it ships today."
        assert interaction.data["notes"] == "Promised a call back on Monday"
        assert interaction.data["agent"] == {"name": "Sam"}
        assert interaction.data["ended_at"] == "2026-02-27T09:34:12+00:00"
        assert interaction.address == "+442079460958" and interaction.provider == "aircall"

    timeline = app_client.get(f"/api/v1/customers/{call['customer_id']}/timeline", headers=_auth(workspace)).json()
    [item] = [i for i in timeline["data"] if i["id"] == call["id"]]
    assert item["at"].startswith("2026-02-27T09:30:00")  # placed at the time of the call
    assert item["summary"] == "voice received: Call answered, 4 min 12 s, with Sam"
    assert item["data"]["text"].startswith("Customer: my parcel is late")
    listed = app_client.get(
        "/api/v1/interactions",
        headers=_auth(workspace),
        params={"channel": "voice", "customer_id": call["customer_id"]},
    )
    assert [i["id"] for i in listed.json()["data"]] == [call["id"]]


def test_a_repeated_call_record_is_stored_once_and_a_changed_one_is_a_conflict(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    first = app_client.post("/api/v1/calls", headers=_auth(workspace), json=_call())
    again = app_client.post("/api/v1/calls", headers=_auth(workspace), json=_call())
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["created"] is False
    changed = app_client.post("/api/v1/calls", headers=_auth(workspace), json=_call(disposition="missed"))
    assert changed.status_code == 409 and changed.json()["error"]["field"] == "external_id"
    assert _count(db, Interaction) == 1 and _count(db, Customer) == 1


def test_a_call_finds_the_customer_who_holds_the_number_or_the_id_given(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    ann = make_customer(db, workspace.id, "ann", phone="+14155550100")
    by_phone = app_client.post(
        "/api/v1/calls", headers=_auth(workspace), json=_call(external_id="c-1", customer={"phone": "(415) 555-0100"})
    )
    # A national number needs the workspace's region; without it the field is named.
    assert by_phone.status_code == 400 and by_phone.json()["error"]["field"] == "customer.phone"
    app_client.patch("/api/v1/workspace", headers=_auth(workspace), json={"settings": {"default_phone_region": "US"}})
    by_phone = app_client.post(
        "/api/v1/calls", headers=_auth(workspace), json=_call(external_id="c-1", customer={"phone": "(415) 555-0100"})
    )
    assert by_phone.status_code == 201, by_phone.text
    assert by_phone.json()["customer_id"] == ann
    by_user = app_client.post(
        "/api/v1/calls",
        headers=_auth(workspace),
        json=_call(
            external_id="c-2",
            direction="out",
            disposition="voicemail",
            customer={"user_id": "ann"},
            started_at="2026-02-27T10:30:00+01:00",
        ),
    )
    assert by_user.json()["customer_id"] == ann
    assert by_user.json()["started_at"] == "2026-02-27T09:30:00Z"  # kept in UTC
    by_id = app_client.post(
        "/api/v1/calls",
        headers=_auth(workspace),
        json=_call(external_id="c-3", customer={"customer_id": ann, "phone": "+14155550199"}),
    )
    assert by_id.json()["customer_id"] == ann
    with db.session() as s:  # the new number joined the profile the call named
        owner = s.scalar(select(Identity.customer_id).where(Identity.value == "+14155550199"))
        assert owner == ann
    assert _count(db, Customer) == 1


def test_the_agent_can_be_a_user_of_the_workspace(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    user = app_client.post(
        "/api/v1/users",
        headers=_auth(workspace),
        json={"email": "sam@shop.example", "role": "agent", "name": "Sam Hill"},
    ).json()
    r = app_client.post("/api/v1/calls", headers=_auth(workspace), json=_call(agent={"user_id": user["id"]}))
    assert r.status_code == 201, r.text
    assert r.json()["subject"].endswith("with Sam Hill")
    with db.session() as s:
        interaction = s.get(Interaction, r.json()["id"])
        assert interaction is not None and interaction.data["agent"] == {"user_id": user["id"], "name": "Sam Hill"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"started_at": "2026-02-27T09:30:00"}, "started_at"),  # no time zone
        ({"started_at": "2099-01-01T00:00:00Z"}, "started_at"),  # in the future
        ({"disposition": "exploded"}, "disposition"),
        ({"direction": "sideways"}, "direction"),
        ({"duration_seconds": -1}, "duration_seconds"),
        ({"customer": {}}, "customer"),
        ({"customer": {"phone": "not a number"}}, "customer.phone"),
        ({"customer": {"email": "nobody@"}}, "customer.email"),
        ({"customer": {"customer_id": "cus_nobody"}}, "customer.customer_id"),
        ({"agent": {"user_id": "usr_nobody"}}, "agent.user_id"),
        ({"agent": {}}, "agent"),
        ({"recording_url": "file:///etc/passwd"}, "recording_url"),
        ({"external_id": ""}, "external_id"),
        ({"external_id": "   "}, "external_id"),
        ({"colour": "blue"}, "colour"),
        ({"data": {"blob": "x" * 20_000}}, "data"),
        ({"data": {"n": 2**70}}, "data"),  # no JSON column keeps an integer beyond 64 bits
    ],
)
def test_bad_call_records_are_refused_naming_the_field_and_store_nothing(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, change: dict[str, Any], field: str
) -> None:
    r = app_client.post("/api/v1/calls", headers=_auth(workspace), json=_call(**change))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field, r.json()
    assert _count(db, Interaction) == 0 and _count(db, Customer) == 0


def test_a_batch_stores_the_good_calls_and_names_the_bad_ones(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    calls = [
        _call(external_id="b-1"),
        _call(external_id="b-2", started_at="yesterday"),
        _call(external_id="b-3", customer={"phone": "+14155550123"}, disposition="missed", duration_seconds=0),
        _call(external_id="b-1"),  # a repeat inside the batch
        _call(external_id="b-3", disposition="busy"),  # same id, other details
    ]
    r = app_client.post("/api/v1/calls/batch", headers=_auth(workspace), json={"calls": calls})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"]["field"] == "calls[1].started_at"
    assert [(e["index"], e["field"]) for e in body["rejected"]] == [
        (1, "calls[1].started_at"),
        (4, "calls[4].external_id"),
    ]
    assert (body["created"], body["duplicates"]) == (2, 1)
    assert [s["external_id"] for s in body["stored"]] == ["b-1", "b-3", "b-1"]
    assert body["stored"][1]["subject"] == "Call missed, with Sam"  # no duration when there was none
    assert _count(db, Interaction) == 2

    # Sent again (a call system retrying the whole batch): nothing new, nothing refused.
    again = app_client.post("/api/v1/calls/batch", headers=_auth(workspace), json={"calls": [calls[0], calls[2]]})
    assert again.status_code == 200, again.text
    assert (again.json()["created"], again.json()["duplicates"], again.json()["rejected"]) == (0, 2, [])
    assert _count(db, Interaction) == 2


def test_a_batch_has_limits(app_client: httpx.Client, workspace: WorkspaceKeys) -> None:
    too_many = app_client.post(
        "/api/v1/calls/batch",
        headers=_auth(workspace),
        json={"calls": [_call(external_id=f"x{i}") for i in range(501)]},
    )
    assert too_many.status_code == 400 and too_many.json()["error"]["field"] == "calls"
    empty = app_client.post("/api/v1/calls/batch", headers=_auth(workspace), json={"calls": []})
    assert empty.status_code == 400 and empty.json()["error"]["field"] == "calls"


@pytest.mark.usefixtures("allow_private")
def test_a_recorded_call_is_published_to_subscribed_webhooks(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, receiver: Receiver
) -> None:
    endpoint = app_client.post(
        "/api/v1/webhook-endpoints", headers=_auth(workspace), json={"url": receiver.url, "events": ["call.recorded"]}
    ).json()
    call = app_client.post("/api/v1/calls", headers=_auth(workspace), json=_call()).json()
    app_client.post("/api/v1/calls", headers=_auth(workspace), json=_call())  # a repeat publishes nothing
    deadline = time.monotonic() + 10
    while not receiver.requests:
        assert time.monotonic() < deadline, "the call.recorded webhook did not arrive"
        time.sleep(0.02)
    event = orjson.loads(receiver.requests[0].body)
    assert event["type"] == "call.recorded" and event["data"]["interaction_id"] == call["id"]
    assert event["data"]["customer_id"] == call["customer_id"] and event["data"]["disposition"] == "answered"
    assert "transcript" not in event["data"]
    at = int(receiver.requests[0].headers["shopkeeper-timestamp"])
    verify(endpoint["secret"], receiver.requests[0].headers["shopkeeper-signature"], receiver.requests[0].body, now=at)
    with db.session() as s:  # one delivery planned: the repeat published nothing
        assert s.scalar(select(func.count()).select_from(Send).where(Send.channel == "webhook")) == 1
