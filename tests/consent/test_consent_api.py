"""SPEC §4 through the admin API: topics, status changes with their proof, the consent log,
preferences, the contact policy, and decisions explained."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from shopkeeper.clock import FrozenClock
from shopkeeper.db.session import Database
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer


def auth(ws: WorkspaceKeys) -> dict[str, str]:
    return {"Authorization": f"Bearer {ws.secret_key}"}


@pytest.fixture
def shop(app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock) -> str:
    for topic in (
        {
            "key": "newsletter",
            "purpose": "Monthly news",
            "lawful_basis": "consent",
            "channels": ["email"],
            "double_opt_in": True,
        },
        {"key": "offers", "purpose": "Discounts", "lawful_basis": "consent", "channels": ["email", "sms"]},
        {
            "key": "order-updates",
            "purpose": "Where your parcel is",
            "lawful_basis": "contract",
            "channels": ["email", "sms", "push"],
        },
    ):
        r = app_client.post("/api/v1/topics", json=topic, headers=auth(workspace))
        assert r.status_code == 201, r.text
    return make_customer(
        db, workspace.id, "cust-1", email="c1@example.com", phone="+33612345678", timezone="Europe/Paris"
    )


def change(app_client: httpx.Client, ws: WorkspaceKeys, customer: str, *changes: dict[str, Any]) -> httpx.Response:
    return app_client.post(
        f"/api/v1/customers/{customer}/subscriptions", json={"changes": list(changes)}, headers=auth(ws)
    )


def test_topics_are_listed_and_validated(app_client: httpx.Client, workspace: WorkspaceKeys, shop: str) -> None:
    keys = [t["key"] for t in app_client.get("/api/v1/topics", headers=auth(workspace)).json()]
    assert keys == ["newsletter", "offers", "order-updates"]
    duplicate = app_client.post(
        "/api/v1/topics",
        headers=auth(workspace),
        json={"key": "offers", "purpose": "x", "lawful_basis": "consent", "channels": ["email"]},
    )
    assert duplicate.status_code == 409
    bad = app_client.post(
        "/api/v1/topics",
        headers=auth(workspace),
        json={"key": "Bad Key", "purpose": "x", "lawful_basis": "consent", "channels": ["email"]},
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "key"
    no_basis = app_client.post(
        "/api/v1/topics",
        headers=auth(workspace),
        json={"key": "x", "purpose": "x", "lawful_basis": "vibes", "channels": ["email"]},
    )
    assert no_basis.status_code == 400 and no_basis.json()["error"]["field"] == "lawful_basis"


def test_status_changes_are_logged_with_their_proof(
    app_client: httpx.Client, workspace: WorkspaceKeys, shop: str
) -> None:
    r = change(
        app_client,
        workspace,
        shop,
        {
            "channel": "sms",
            "topic": "offers",
            "status": "opted_in",
            "wording": "Text me the deals",
            "ip": "203.0.113.7",
            "source": "agent",
        },
    )
    assert r.status_code == 200, r.text
    statuses = {(s["channel"], s["topic"]): s["status"] for s in r.json()["subscriptions"]}
    assert statuses == {("sms", "offers"): "opted_in"}
    log = app_client.get(f"/api/v1/customers/{shop}/consent-events", headers=auth(workspace)).json()
    assert len(log) == 1
    entry = log[0]
    assert (entry["status"], entry["previous_status"], entry["source"]) == ("opted_in", "unknown", "agent")
    assert (entry["wording"], entry["ip"], entry["lawful_basis"]) == ("Text me the deals", "203.0.113.7", "consent")
    assert entry["actor"].startswith("key:")
    # The same status again changes nothing and proves nothing new.
    change(app_client, workspace, shop, {"channel": "sms", "topic": "offers", "status": "opted_in"})
    assert len(app_client.get(f"/api/v1/customers/{shop}/consent-events", headers=auth(workspace)).json()) == 1
    audit = app_client.get("/api/v1/audit", params={"customer_id": shop}, headers=auth(workspace)).json()["data"]
    assert [a["action"] for a in audit] == ["consent.change"]


def test_double_opt_in_topics_go_pending(app_client: httpx.Client, workspace: WorkspaceKeys, shop: str) -> None:
    r = change(app_client, workspace, shop, {"channel": "email", "topic": "newsletter", "status": "opted_in"})
    assert {s["topic"]: s["status"] for s in r.json()["subscriptions"]} == {"newsletter": "pending"}


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"channel": "email", "topic": "nope", "status": "opted_in"}, "changes[1].topic"),
        ({"channel": "push", "topic": "offers", "status": "opted_in"}, "changes[1].channel"),
        ({"channel": "email", "topic": "*", "status": "opted_in"}, "changes[1].status"),
        ({"channel": "fax", "topic": "offers", "status": "opted_in"}, "changes.1.channel"),
    ],
)
def test_a_bad_change_fails_the_whole_request_and_writes_nothing(
    app_client: httpx.Client, workspace: WorkspaceKeys, shop: str, bad: dict[str, Any], field: str
) -> None:
    good = {"channel": "email", "topic": "offers", "status": "opted_in"}
    r = change(app_client, workspace, shop, good, bad)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field
    assert app_client.get(f"/api/v1/customers/{shop}/consent-events", headers=auth(workspace)).json() == []


def test_the_360_view_shows_consent_pressure_and_consent_history(
    app_client: httpx.Client, workspace: WorkspaceKeys, shop: str
) -> None:
    change(
        app_client,
        workspace,
        shop,
        {"channel": "email", "topic": "offers", "status": "opted_in"},
        {"channel": "sms", "topic": "*", "status": "opted_out"},
    )
    view = app_client.get(f"/api/v1/customers/{shop}", headers=auth(workspace)).json()
    consent = view["sections"]["consent"]
    assert {(s["channel"], s["topic"], s["status"]) for s in consent["subscriptions"]} == {
        ("email", "offers", "opted_in"),
        ("sms", "*", "opted_out"),
    }
    assert consent["contact_pressure"] == 0.0
    kinds = [item["kind"] for item in view["timeline"]["data"]]
    assert kinds.count("consent") == 2


def test_preferences_and_the_explained_decision(
    app_client: httpx.Client, workspace: WorkspaceKeys, shop: str, frozen_clock: FrozenClock
) -> None:
    change(app_client, workspace, shop, {"channel": "email", "topic": "offers", "status": "opted_in"})
    r = app_client.put(
        f"/api/v1/customers/{shop}/preferences",
        headers=auth(workspace),
        json={"preferred_channel": "email", "frequency": "weekly", "quiet_start": "20:00", "quiet_end": "09:30"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["preference"]["quiet_start"] == "20:00"
    evening = datetime(2026, 3, 1, 19, 0, tzinfo=UTC)  # 20:00 in Paris: inside her own quiet hours
    d = app_client.post(
        f"/api/v1/customers/{shop}/can-contact",
        headers=auth(workspace),
        json={"channel": "email", "topic": "offers", "kind": "marketing", "at": evening.isoformat()},
    )
    assert d.status_code == 200, d.text
    body = d.json()
    assert (body["outcome"], body["reason"]) == ("delay", "quiet_hours")
    assert body["until"].startswith("2026-03-02T08:30:00")
    assert any("quiet hours 20:00–09:30" in line for line in body["explanation"])
    bad = app_client.put(
        f"/api/v1/customers/{shop}/preferences",
        headers=auth(workspace),
        json={"quiet_start": "25:00", "quiet_end": "08:00"},
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "quiet_start"


def test_contact_policy_is_validated_and_applied(app_client: httpx.Client, workspace: WorkspaceKeys, shop: str) -> None:
    default = app_client.get("/api/v1/contact-policy", headers=auth(workspace)).json()["policy"]
    assert default["quiet_hours"] == {"start": "21:00", "end": "08:00"}
    for bad, field in (
        ({"caps": {"pigeon": {"day": 1}}}, "caps"),
        ({"default_timezone": "Mars/Base"}, "default_timezone"),
        ({"quiet_hours": {"start": "9pm", "end": "08:00"}}, "quiet_hours.start"),
        ({"surprise": 1}, "surprise"),
    ):
        r = app_client.put("/api/v1/contact-policy", json=bad, headers=auth(workspace))
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]["field"] == field
    ok = app_client.put(
        "/api/v1/contact-policy", headers=auth(workspace), json={"caps": {"email": {"day": 1}}, "quiet_hours": None}
    )
    assert ok.status_code == 200
    assert app_client.get("/api/v1/contact-policy", headers=auth(workspace)).json()["policy"]["quiet_hours"] is None
