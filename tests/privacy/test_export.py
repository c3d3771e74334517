"""SPEC §4 GDPR: export everything about a customer as one JSON document, streamed page by page."""

from __future__ import annotations

import json

import httpx
import pytest

from shopkeeper import clock
from shopkeeper.auth.principal import Principal
from shopkeeper.db.session import Database
from shopkeeper.privacy.export import FORMAT, export_chunks, plan_export
from tests.conftest import WorkspaceKeys
from tests.privacy.people import BOB, ZELDA, Person, bearer


def export(app_client: httpx.Client, ws: WorkspaceKeys, customer_id: str) -> dict:  # type: ignore[type-arg]
    r = app_client.get(f"/api/v1/customers/{customer_id}/export", headers=bearer(ws))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert "attachment" in r.headers["content-disposition"]
    document: dict = json.loads(r.content)  # type: ignore[type-arg]
    return document


def test_the_export_holds_every_kind_of_record(
    app_client: httpx.Client, workspace: WorkspaceKeys, zelda: Person
) -> None:
    doc = export(app_client, workspace, zelda.customer_id)
    assert doc["format"] == FORMAT and doc["requested_id"] == zelda.customer_id
    assert doc["customer"]["id"] == zelda.customer_id
    assert doc["customer"]["traits"]["name"] == ZELDA["name"] and doc["customer"]["traits"]["nickname"] == "Zed"
    assert "workspace_id" not in doc["customer"]
    # merged profile ids and the merged-away profile itself
    assert doc["merged_ids"] == [zelda.merged_id]
    assert [p["id"] for p in doc["merged_profiles"]] == [zelda.merged_id]
    # identities with provenance
    identities = {(i["kind"], i["value"]): i for i in doc["identities"]}
    for kind in ("user_id", "anonymous_id", "email", "phone", "device_token"):
        assert (kind, ZELDA[kind]) in identities
    assert identities[("email", ZELDA["work_email"])]["source"] == "api"
    assert identities[("email", ZELDA["email"])]["source_ref"].startswith("event:")
    # merges and identity conflicts
    assert [m["source_customer_id"] for m in doc["merges"]] == [zelda.merged_id]
    assert doc["merges"][0]["target_customer_id"] == zelda.customer_id
    assert [c["value"] for c in doc["identity_conflicts"]] == [BOB["anonymous_id"]]
    # every event, oldest first
    assert len(doc["events"]) == zelda.events
    assert [e["timestamp"] for e in doc["events"]] == sorted(e["timestamp"] for e in doc["events"])
    assert {e["name"] for e in doc["events"]} >= {"Home", "Viewed Inhaler", "Shared Tablet"}
    # subscriptions, the consent log (with its proof), preferences, contacts
    assert {(s["channel"], s["topic"], s["status"]) for s in doc["subscriptions"]} == {
        ("email", "offers", "opted_in"),
        ("sms", "*", "opted_out"),
    }
    assert {e["source"] for e in doc["consent_events"]} == {"preference-centre", "inbound-keyword"}
    assert any(e["wording"] == "Yes, Zelda, send me offers" for e in doc["consent_events"])
    assert doc["preferences"][0]["frequency"] == "weekly" and doc["preferences"][0]["quiet_start"] == "22:00"
    assert [c["ref"] for c in doc["contacts"]] == ["receipt-zelda"]
    # suppressions that match their addresses (and not Bob's)
    assert [(s["channel"], s["address"], s["reason"]) for s in doc["suppressions"]] == [("sms", ZELDA["phone"], "stop")]
    # audit entries about them: the trait edit, the identity link, the STOP suppression, this export
    actions = {a["action"] for a in doc["audit"]}
    assert {"customer.update", "identity.link", "suppression.add", "customer.export"} <= actions
    assert BOB["email"] not in json.dumps(doc) and BOB["name"] not in json.dumps(doc)


def test_a_merged_away_id_exports_its_survivor(
    app_client: httpx.Client, workspace: WorkspaceKeys, zelda: Person
) -> None:
    doc = export(app_client, workspace, zelda.merged_id)
    assert doc["requested_id"] == zelda.merged_id and doc["customer"]["id"] == zelda.customer_id
    assert len(doc["events"]) == zelda.events


def test_histories_are_read_a_page_at_a_time_and_give_the_same_document(
    db: Database, workspace: WorkspaceKeys, zelda: Person
) -> None:
    operator = Principal(workspace.id, "test", "owner")
    now = clock.now()
    with db.session(write=True) as s:
        plan = plan_export(s, operator, zelda.customer_id, now=now)
        whole = list(export_chunks(s, plan, now=now))
        paged = list(export_chunks(s, plan, now=now, page_size=2))
    assert json.loads(b"".join(whole)) == json.loads(b"".join(paged))
    # 7 events in pages of 2 are 4 chunks of their own: never the whole history in one piece
    events_at = next(i for i, c in enumerate(paged) if c == b',"events":[')
    assert len(paged[events_at + 1 : paged.index(b"]", events_at)]) == 4


def test_export_errors(app_client: httpx.Client, workspace: WorkspaceKeys, zelda: Person) -> None:
    r = app_client.get("/api/v1/customers/cus_nobody/export", headers=bearer(workspace))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert app_client.get(f"/api/v1/customers/{zelda.customer_id}/export").status_code == 401


@pytest.mark.parametrize("events", [0, 1])
def test_a_customer_with_little_history_exports_valid_json(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, events: int
) -> None:
    from tests.helpers import ingest, message
    from tests.privacy.people import customer_of

    ingest(db, workspace.id, [message("identify", userId="quiet", traits={"plan": "free"})][:1])
    customer_id = customer_of(db, workspace.id, "user_id", "quiet")
    assert customer_id is not None
    if events == 0:
        from sqlalchemy import delete

        from shopkeeper.events.models import Event

        with db.session(write=True) as s:
            s.execute(delete(Event).where(Event.customer_id == customer_id))
    doc = export(app_client, workspace, customer_id)
    assert len(doc["events"]) == events
    assert doc["consent_events"] == [] and doc["contacts"] == [] and doc["merged_ids"] == []
