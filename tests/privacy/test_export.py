"""SPEC §4 GDPR: export everything about a customer as one JSON document, streamed page by page."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from shopkeeper import clock
from shopkeeper.auth.principal import Principal
from shopkeeper.clock import FrozenClock
from shopkeeper.db.session import Database
from shopkeeper.privacy.export import FORMAT, export_chunks, plan_export
from shopkeeper.segments.models import CustomerScore
from tests.conftest import WorkspaceKeys
from tests.privacy.people import BOB, ZELDA, Person, bearer, make_zelda, segment_traces


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
    assert doc["segment_memberships"] == [] and doc["scores"] == []  # in no segment, never scored
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


@pytest.fixture
def scored_zelda(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock, bob: str
) -> Person:
    """Zelda in segments and scored (her anonymous profile too, merged away with its rows), then
    out of "buyers" again: its definition changes so that she no longer matches."""
    person = make_zelda(app_client, db, workspace, frozen_clock, before_merge=segment_traces)
    auth = bearer(workspace)
    buyers = next(s for s in app_client.get("/api/v1/segments", headers=auth).json()["data"] if s["key"] == "buyers")
    r = app_client.patch(
        f"/api/v1/segments/{buyers['id']}",
        headers=auth,
        json={"conditions": {"event": {"name": "Order Completed", "op": "gte", "count": 2}}},
    )
    assert r.status_code == 200, r.text
    frozen_clock.advance(timedelta(minutes=1))
    r = app_client.post(f"/api/v1/segments/{buyers['id']}/refresh", headers=auth)
    assert r.status_code == 200 and r.json()["exited"] == 2, r.text  # Zelda and Bob
    return person


def test_the_export_holds_segment_memberships_with_entry_and_exit_times_and_scores(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, scored_zelda: Person, bob: str
) -> None:
    doc = export(app_client, workspace, scored_zelda.customer_id)
    # Her two profiles (the one she signed up with, and her earlier anonymous visit; one merged
    # into the other) each kept their rows: she bought as the first, then left "buyers" when it
    # came to need two orders; the visit is still in "visitors".
    profiles = {scored_zelda.customer_id, scored_zelda.merged_id}
    rows = {m["segment_key"]: m for m in doc["segment_memberships"]}
    assert sorted(rows) == ["buyers", "visitors"] and {m["customer_id"] for m in rows.values()} == profiles
    bought, visited = rows["buyers"], rows["visitors"]
    assert bought["segment_name"] == "buyers" and bought["segment_archived_at"] is None
    assert bought["entered_at"] < bought["exited_at"] and bought["version"] == 1
    assert visited["entered_at"] is not None and visited["exited_at"] is None
    assert all("workspace_id" not in m for m in doc["segment_memberships"])
    # every score stored for either profile: RFM and NPS of the buyer, CSAT of the visitor
    scores = {(s["customer_id"], s["name"]): s for s in doc["scores"]}
    buyer, visitor = bought["customer_id"], visited["customer_id"]
    assert {"rfm", "rfm_r", "rfm_f", "rfm_m", "rfm_segment", "nps", "nps_group"} <= {
        name for owner, name in scores if owner == buyer
    }
    assert scores[(buyer, "nps")]["value"] == 9.0 and scores[(buyer, "nps_group")]["label"] == "promoter"
    assert scores[(visitor, "csat")]["value"] == 4.0
    assert all(s["computed_at"] for s in doc["scores"]) and all("workspace_id" not in s for s in doc["scores"])
    # nothing of Bob's, who bought too (and so is scored)
    with db.session() as s:
        bobs = s.scalars(select(CustomerScore.name).where(CustomerScore.customer_id == bob)).all()
    assert bobs and all(owner != bob for owner, _ in scores)
    assert all(m["customer_id"] != bob for m in doc["segment_memberships"])
    # the history of entries and exits is in their events as well
    names = [e["name"] for e in doc["events"]]
    assert names.count("Segment Entered") == 2 and names.count("Segment Exited") == 1
