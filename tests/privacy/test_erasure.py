"""SPEC §4 GDPR: erase a customer — profile, identities, events, consent records, segment
memberships and scores — keeping only a hashed suppression entry, so that an erased address is
never contacted again."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Text, cast, func, or_, select
from sqlalchemy.orm import Session

from shopkeeper import clock
from shopkeeper.auth.models import AuditEntry
from shopkeeper.auth.principal import Principal
from shopkeeper.clock import FrozenClock
from shopkeeper.consent.models import ConsentEvent, Contact, Subscription, Suppression
from shopkeeper.consent.policy import can_contact
from shopkeeper.customers.identity_cache import IdentityCache
from shopkeeper.customers.models import Customer, Identity
from shopkeeper.db.models import metadata
from shopkeeper.db.session import Database
from shopkeeper.events.models import Event
from shopkeeper.privacy import erasure
from shopkeeper.segments.models import CustomerScore, Segment, SegmentMembership
from tests.conftest import WorkspaceKeys
from tests.helpers import ingest, message
from tests.privacy.people import BOB, ZELDA, Person, bearer, customer_of, make_zelda, segment_traces
from tests.test_workspace_isolation import snapshot


@pytest.fixture
def zelda(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock, bob: str
) -> Person:
    """Zelda as everywhere in these tests, and also in segments and scored — her anonymous
    profile too, which is merged away with its membership and score rows still stored — and
    sent an email that names her (a send, its history, the message body)."""
    person = make_zelda(app_client, db, workspace, frozen_clock, before_merge=segment_traces)
    message_traces(app_client, workspace, person.customer_id)
    return person


def message_traces(app_client: httpx.Client, ws: WorkspaceKeys, customer_id: str) -> None:
    auth = bearer(ws)
    content = {"email": {"subject": "For {{ customer.name }}", "text": "Hello {{ customer.name }}, your inhaler"}}
    r = app_client.post(
        "/api/v1/sends",
        headers=auth,
        json={"customer_id": customer_id, "channel": "email", "content": content, "idempotency_key": "zelda-1"},
    )
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + 10  # the server's own delivery worker sends it
    while app_client.get(f"/api/v1/sends/{r.json()['id']}", headers=auth).json()["status"] != "delivered":
        assert time.monotonic() < deadline, "the send was not delivered"
        time.sleep(0.02)


def erase(app_client: httpx.Client, ws: WorkspaceKeys, customer_id: str, confirm: str | None = None) -> httpx.Response:
    return app_client.post(
        f"/api/v1/customers/{customer_id}/erase", headers=bearer(ws), json={"confirm": confirm or customer_id}
    )


def find_everywhere(session: Session, needles: list[str], *, but_the_audit_log: bool = False) -> list[str]:
    """Every column of every table (text and JSON included: each is read as text), searched for
    each needle, case-insensitively. Audit rows about an erased person keep who did what to which
    profile id, and when (only their details go): `but_the_audit_log` leaves that table out, to
    search for profile ids."""
    found = []
    for table in metadata.sorted_tables:
        if but_the_audit_log and table.name == "audit_log":
            continue
        for column in table.columns:
            text = func.lower(cast(column, Text))
            hits = session.execute(
                select(column).where(or_(*(text.contains(n.lower(), autoescape=True) for n in needles)))
            ).all()
            found += [f"{table.name}.{column.name}: {row[0]!r}" for row in hits]
    return found


def rows_of(session: Session, customer_id: str) -> dict[str, list[Any]]:
    def dump(model: Any, *where: Any) -> list[Any]:
        table = model.__table__
        return sorted(map(tuple, session.execute(select(table).where(*where))), key=repr)

    return {
        "customer": dump(Customer, Customer.id == customer_id),
        "identities": dump(Identity, Identity.customer_id == customer_id),
        "events": dump(Event, Event.customer_id == customer_id),
        "subscriptions": dump(Subscription, Subscription.customer_id == customer_id),
        "consent": dump(ConsentEvent, ConsentEvent.customer_id == customer_id),
        "contacts": dump(Contact, Contact.customer_id == customer_id),
        "suppressions": dump(Suppression, Suppression.address == BOB["email"]),
        "memberships": dump(SegmentMembership, SegmentMembership.customer_id == customer_id),
        "scores": dump(CustomerScore, CustomerScore.customer_id == customer_id),
    }


def member_counts(session: Session) -> dict[str, int]:
    return {s.key: s.member_count for s in session.scalars(select(Segment))}


def test_the_needle_search_finds_zelda_before_erasure(db: Database, zelda: Person) -> None:
    """The search below is only worth something if it finds her everywhere she is."""
    with db.session() as s:
        found = find_everywhere(s, zelda.needles)
    tables = {hit.split(".")[0] for hit in found}
    assert {
        "customers",
        "identities",
        "events",
        "merges",
        "consent_events",
        "suppressions",
        "audit_log",
        "sends",
        "interactions",
    } <= tables, tables
    # Memberships and scores name no identifier, only profile ids: the search by id finds them,
    # for her profile and for the one merged into it.
    with db.session() as s:
        for profile in (zelda.customer_id, zelda.merged_id):
            tables = {hit.split(".")[0] for hit in find_everywhere(s, [profile])}
            assert {"segment_memberships", "customer_scores", "events"} <= tables, (profile, tables)


def test_erasure_leaves_no_personal_data_in_any_table(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, zelda: Person, bob: str
) -> None:
    profiles = [zelda.customer_id, zelda.merged_id]
    with db.session() as s:
        bob_before = rows_of(s, bob)
        assert bob_before["memberships"] and bob_before["scores"]
        assert member_counts(s) == {"visitors": 1, "buyers": 2}
        scores = s.scalar(
            select(func.count()).select_from(CustomerScore).where(CustomerScore.customer_id.in_(profiles))
        )
        assert scores is not None
    r = erase(app_client, workspace, zelda.customer_id)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["customer_id"] == zelda.customer_id
    assert set(body["erased_customer_ids"]) == {zelda.customer_id, zelda.merged_id}
    assert body["deleted"]["events"] == zelda.events and body["deleted"]["customers"] == 2
    # "buyers" (her) and "visitors" (the anonymous visit, merged away since)
    assert body["deleted"]["segment_memberships"] == 2
    assert (body["deleted"]["sends"], body["deleted"]["interactions"]) == (1, 1)
    assert body["deleted"]["send_events"] == 3  # queued, sent, delivered
    assert body["deleted"]["scores"] == scores and scores > 1
    # email ×2, phone on sms/whatsapp/voice, device token on push
    assert body["suppressed_addresses"] == 6

    with db.session() as s:
        assert find_everywhere(s, zelda.needles) == []
        assert find_everywhere(s, profiles, but_the_audit_log=True) == []
        assert rows_of(s, bob) == bob_before
        assert member_counts(s) == {"visitors": 0, "buyers": 1}
        # the erasure's own audit row stays, with counts and ids only
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "customer.erase"))
        assert entry is not None and entry.subject_id == zelda.customer_id
        assert entry.details["deleted"]["events"] == zelda.events
        # older audit rows about her keep who/what/when, not the details
        update = s.scalar(select(AuditEntry).where(AuditEntry.action == "customer.update"))
        assert update is not None and update.details == erasure.SCRUBBED
        # every suppression of hers is permanent and carries no readable address
        entries = s.scalars(select(Suppression).where(Suppression.workspace_id == workspace.id)).all()
        hers = [e for e in entries if e.address != BOB["email"]]
        assert len(hers) == 6 and {e.reason for e in hers} == {"erased"} and {e.address for e in hers} == {None}
    assert app_client.get(f"/api/v1/customers/{zelda.customer_id}", headers=bearer(workspace)).status_code == 404
    assert app_client.get(f"/api/v1/customers/{zelda.merged_id}", headers=bearer(workspace)).status_code == 404
    assert erase(app_client, workspace, zelda.customer_id).status_code == 404
    # Refreshing afterwards finds nobody to let go: no "Segment Exited" names an erased profile.
    for segment in app_client.get("/api/v1/segments", headers=bearer(workspace)).json()["data"]:
        refreshed = app_client.post(f"/api/v1/segments/{segment['id']}/refresh", headers=bearer(workspace)).json()
        assert (refreshed["entered"], refreshed["exited"]) == (0, 0), refreshed
    with db.session() as s:
        assert find_everywhere(s, profiles, but_the_audit_log=True) == []


def test_an_erased_address_that_comes_back_is_refused(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, zelda: Person, frozen_clock: FrozenClock
) -> None:
    assert erase(app_client, workspace, zelda.customer_id).status_code == 200
    frozen_clock.advance(timedelta(days=30))
    ingest(db, workspace.id, [message("identify", userId="zelda-again", traits={"email": ZELDA["email"].upper()})])
    newcomer = customer_of(db, workspace.id, "email", ZELDA["email"])
    assert newcomer is not None and newcomer not in (zelda.customer_id, zelda.merged_id)
    with db.session() as s:
        decision = can_contact(s, workspace.id, newcomer, "email", None, "transactional", clock.now())
    assert (decision.outcome, decision.reason) == ("deny", "suppressed")
    assert "erased" in " ".join(decision.explanation)
    # and the list finds the entry by the address, without showing it
    r = app_client.get("/api/v1/suppressions", headers=bearer(workspace), params={"address": ZELDA["email"]})
    assert [(e["reason"], e["address"]) for e in r.json()["data"]] == [("erased", None)]
    lift = app_client.delete(f"/api/v1/suppressions/{r.json()['data'][0]['id']}", headers=bearer(workspace))
    assert lift.status_code == 409 and lift.json()["error"]["code"] == "conflict"


def test_ingestion_through_a_warm_identity_cache_cannot_reach_the_erased_profile(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, zelda: Person
) -> None:
    cache = IdentityCache(1000)
    # tests.helpers.ingest does `cache or IdentityCache()`, and an empty cache is falsy (__len__):
    # one unrelated entry makes it use this one.
    cache.put("ws_other", "user_id", "someone", "cus_other")
    ingest(db, workspace.id, [message("track", userId=ZELDA["user_id"], event="Warm")], cache=cache)
    assert cache.get(workspace.id, "user_id", ZELDA["user_id"]) == zelda.customer_id
    assert erase(app_client, workspace, zelda.customer_id).status_code == 200
    ingest(db, workspace.id, [message("track", userId=ZELDA["user_id"], event="After")], cache=cache)
    owner = customer_of(db, workspace.id, "user_id", ZELDA["user_id"])
    assert owner is not None and owner != zelda.customer_id
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Event).where(Event.customer_id == zelda.customer_id)) == 0


def test_erasing_by_a_merged_away_id_erases_the_whole_person(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, zelda: Person
) -> None:
    r = erase(app_client, workspace, zelda.merged_id)
    assert r.status_code == 200, r.text
    assert r.json()["customer_id"] == zelda.customer_id
    with db.session() as s:
        assert find_everywhere(s, zelda.needles) == []
        assert find_everywhere(s, [zelda.customer_id, zelda.merged_id], but_the_audit_log=True) == []


def test_erasure_is_all_or_nothing(
    db: Database, workspace: WorkspaceKeys, zelda: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the suppressions, the audit scrub and the deletions leaves every row as it was."""
    before = snapshot(db, workspace.id)

    def fail(*_: Any) -> None:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(erasure, "bump_identity_epoch", fail)
    with pytest.raises(RuntimeError), db.session(write=True) as s:
        erasure.erase_customer(s, Principal(workspace.id, "test", "owner"), zelda.customer_id, now=clock.now())
    assert snapshot(db, workspace.id) == before


def test_erasure_api_also_rolls_back_on_failure(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, zelda: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(db, workspace.id)
    original = erasure._delete_rows

    def delete_then_fail(session: Session, state: erasure.Erasure) -> None:
        original(session, state)
        raise RuntimeError("crash after the deletes")

    monkeypatch.setattr(erasure, "_delete_rows", delete_then_fail)
    r = erase(app_client, workspace, zelda.customer_id)
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal"
    assert snapshot(db, workspace.id) == before


@pytest.mark.parametrize(
    ("path_id", "body", "status", "field"),
    [
        ("zelda", {"confirm": "cus_someone_else"}, 400, "confirm"),
        ("zelda", {}, 400, "confirm"),
        ("zelda", {"confirm": "zelda", "also": 1}, 400, "also"),
        ("cus_nobody", {"confirm": "cus_nobody"}, 404, "id"),
    ],
)
def test_erasure_must_be_confirmed_and_refusals_change_nothing(
    app_client: httpx.Client,
    db: Database,
    workspace: WorkspaceKeys,
    zelda: Person,
    path_id: str,
    body: dict[str, Any],
    status: int,
    field: str,
) -> None:
    before = snapshot(db, workspace.id)
    path_id = zelda.customer_id if path_id == "zelda" else path_id
    body = {k: (zelda.customer_id if v == "zelda" else v) for k, v in body.items()}
    r = app_client.post(f"/api/v1/customers/{path_id}/erase", headers=bearer(workspace), json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["field"] == field
    assert snapshot(db, workspace.id) == before
