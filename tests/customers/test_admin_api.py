"""SPEC §9 admin API for customers: search, 360° view, timeline and events pages, edits, unmerge,
errors shaped {"error": {"code", "message", "field"}}."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from shopkeeper.clock import FrozenClock
from shopkeeper.db.session import Database
from tests.conftest import WorkspaceKeys
from tests.helpers import ingest, message


def bearer(ws: WorkspaceKeys) -> dict[str, str]:
    return {"Authorization": f"Bearer {ws.secret_key}"}


@pytest.fixture
def shop(db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock) -> dict[str, Any]:
    """Three people: Alice (identified, pro plan, 30 events), Bob (basic), and an anonymous visitor."""
    alice_events = [
        message(
            "identify",
            userId="alice",
            traits={"email": "alice@example.com", "plan": "pro", "age": 34},
            timestamp=frozen_clock.now().isoformat(),
        )
    ]
    for i in range(30):
        frozen_clock.advance(timedelta(minutes=1))
        alice_events.append(
            message("track", userId="alice", event=f"Step {i:02d}", timestamp=frozen_clock.now().isoformat())
        )
    ingest(db, workspace.id, alice_events)
    frozen_clock.advance(timedelta(minutes=1))
    ingest(
        db,
        workspace.id,
        [
            message(
                "identify",
                userId="bob",
                traits={"email": "bob@example.org", "plan": "basic", "vip": True, "phone": "+33 6 12 34 56 78"},
            )
        ],
    )
    frozen_clock.advance(timedelta(minutes=1))
    ingest(db, workspace.id, [message("page", anonymousId="visitor-1", name="Home")])
    return {}


def ids_of(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [c["identities"].get("user_id", ["?"])[0] for c in r.json()["data"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "alice@example.com"}, ["alice"]),
        ({"q": "  ALICE@Example.COM "}, ["alice"]),
        ({"q": "+33612345678"}, ["bob"]),
        ({"q": "bob"}, ["bob"]),
        ({"q": "ali"}, ["alice"]),
        ({"q": "visitor-1"}, ["?"]),
        ({"trait": "plan:pro"}, ["alice"]),
        ({"trait": "age:34"}, ["alice"]),
        ({"trait": "vip:true"}, ["bob"]),
        ({"trait": ["plan:basic", "vip:true"]}, ["bob"]),
        ({"trait": "plan:enterprise"}, []),
        ({"q": "nobody-at-all"}, []),
    ],
)
def test_search_customers_by_any_identifier_or_trait(
    app_client: httpx.Client, workspace: WorkspaceKeys, shop: Any, params: dict[str, Any], expected: list[str]
) -> None:
    assert ids_of(app_client.get("/api/v1/customers", params=params, headers=bearer(workspace))) == expected


def test_customer_list_pages_with_a_cursor(app_client: httpx.Client, workspace: WorkspaceKeys, shop: Any) -> None:
    first = app_client.get("/api/v1/customers", params={"limit": 2}, headers=bearer(workspace)).json()
    assert len(first["data"]) == 2 and first["next_cursor"]
    second = app_client.get(
        "/api/v1/customers", params={"limit": 2, "cursor": first["next_cursor"]}, headers=bearer(workspace)
    ).json()
    assert len(second["data"]) == 1 and second["next_cursor"] is None
    everyone = [c["id"] for c in first["data"] + second["data"]]
    assert len(set(everyone)) == 3
    assert everyone == sorted(everyone, reverse=True)  # newest first


def test_the_360_view_and_its_timeline_pages_newest_first(
    app_client: httpx.Client, workspace: WorkspaceKeys, shop: Any
) -> None:
    alice = app_client.get("/api/v1/customers", params={"q": "alice"}, headers=bearer(workspace)).json()["data"][0]
    view = app_client.get(f"/api/v1/customers/{alice['id']}", params={"limit": 10}, headers=bearer(workspace)).json()
    assert view["traits"] == {"email": "alice@example.com", "plan": "pro", "age": 34}
    assert {(i["kind"], i["value"]) for i in view["identities"]} == {
        ("user_id", "alice"),
        ("email", "alice@example.com"),
    }
    assert all(i["source"] == "event" and i["source_ref"].startswith("event:") for i in view["identities"])
    assert view["stats"]["events"] == 31
    summaries = [item["summary"] for item in view["timeline"]["data"]]
    assert summaries == [f"Step {i:02d}" for i in range(29, 19, -1)]

    seen = list(summaries)
    cursor = view["timeline"]["next_cursor"]
    while cursor:
        page = app_client.get(
            f"/api/v1/customers/{alice['id']}/timeline",
            params={"limit": 10, "cursor": cursor},
            headers=bearer(workspace),
        ).json()
        seen += [item["summary"] for item in page["data"]]
        cursor = page["next_cursor"]
    assert len(seen) == 31 and seen[-1].startswith("Identified")
    assert len(set(seen)) == 31


def test_events_of_a_customer_filter_by_type_and_name(
    app_client: httpx.Client, workspace: WorkspaceKeys, shop: Any
) -> None:
    alice = app_client.get("/api/v1/customers", params={"q": "alice"}, headers=bearer(workspace)).json()["data"][0]
    url = f"/api/v1/customers/{alice['id']}/events"
    assert len(app_client.get(url, params={"type": "identify"}, headers=bearer(workspace)).json()["data"]) == 1
    named = app_client.get(url, params={"name": "Step 07"}, headers=bearer(workspace)).json()["data"]
    assert [e["name"] for e in named] == ["Step 07"]
    page = app_client.get(url, params={"limit": 25}, headers=bearer(workspace)).json()
    rest = app_client.get(url, params={"limit": 25, "cursor": page["next_cursor"]}, headers=bearer(workspace)).json()
    assert len(page["data"]) + len(rest["data"]) == 31 and rest["next_cursor"] is None


def test_patching_traits_sets_removes_and_is_audited(
    app_client: httpx.Client, workspace: WorkspaceKeys, shop: Any
) -> None:
    bob = app_client.get("/api/v1/customers", params={"q": "bob"}, headers=bearer(workspace)).json()["data"][0]
    r = app_client.patch(
        f"/api/v1/customers/{bob['id']}",
        json={"traits": {"plan": "pro", "vip": None}, "timezone": "Europe/Paris", "locale": "fr-FR"},
        headers=bearer(workspace),
    )
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["traits"] == {"email": "bob@example.org", "plan": "pro", "phone": "+33 6 12 34 56 78"}
    assert (view["timezone"], view["locale"]) == ("Europe/Paris", "fr-FR")
    audit = app_client.get("/api/v1/audit", params={"customer_id": bob["id"]}, headers=bearer(workspace)).json()["data"]
    assert [a["action"] for a in audit] == ["customer.update"]
    assert audit[0]["details"]["traits"] == {"plan": "pro", "vip": None}


def test_changing_the_email_trait_relinks_the_identity(
    app_client: httpx.Client, workspace: WorkspaceKeys, shop: Any
) -> None:
    bob = app_client.get("/api/v1/customers", params={"q": "bob"}, headers=bearer(workspace)).json()["data"][0]
    r = app_client.patch(
        f"/api/v1/customers/{bob['id']}", json={"traits": {"email": "Robert@Example.org"}}, headers=bearer(workspace)
    )
    assert r.status_code == 200, r.text
    found = app_client.get("/api/v1/customers", params={"q": "robert@example.org"}, headers=bearer(workspace)).json()
    assert [c["id"] for c in found["data"]] == [bob["id"]]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"traits": {"plan": "x"}, "timezone": "Mars/Olympus"}, 400, "timezone"),
        ({"traits": {"email": "alice@example.com", "plan": "stolen"}}, 409, "traits.email"),
        ({"traits": {"email": "nope", "plan": "x"}}, 400, "traits.email"),
        ({"traits": {"": 1}}, 400, "traits"),
        ({"traits": {"blob": "x" * 40_000}}, 400, "traits"),
        ({"unknown": 1}, 400, "unknown"),
        ({"traits": [1, 2]}, 400, "traits"),
    ],
)
def test_bad_patches_are_refused_and_change_nothing(
    app_client: httpx.Client, workspace: WorkspaceKeys, shop: Any, body: dict[str, Any], status: int, field: str
) -> None:
    bob = app_client.get("/api/v1/customers", params={"q": "bob"}, headers=bearer(workspace)).json()["data"][0]
    before = app_client.get(f"/api/v1/customers/{bob['id']}", headers=bearer(workspace)).json()
    r = app_client.patch(f"/api/v1/customers/{bob['id']}", json=body, headers=bearer(workspace))
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"}
    assert set(r.json()["error"]) == {"code", "message", "field"}
    assert r.json()["error"]["field"] == field
    after = app_client.get(f"/api/v1/customers/{bob['id']}", headers=bearer(workspace)).json()
    assert after == before


def test_linking_an_identifier_and_refusing_one_that_belongs_to_someone_else(
    app_client: httpx.Client, workspace: WorkspaceKeys, shop: Any
) -> None:
    bob = app_client.get("/api/v1/customers", params={"q": "bob"}, headers=bearer(workspace)).json()["data"][0]
    url = f"/api/v1/customers/{bob['id']}/identities"
    ok = app_client.post(
        url, json={"kind": "external:shopify", "value": "gid://shopify/Customer/9"}, headers=bearer(workspace)
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["source"] == "api"
    taken = app_client.post(url, json={"kind": "email", "value": "alice@example.com"}, headers=bearer(workspace))
    assert taken.status_code == 409
    second_uid = app_client.post(url, json={"kind": "user_id", "value": "bob-2"}, headers=bearer(workspace))
    assert second_uid.status_code == 409
    bad_kind = app_client.post(url, json={"kind": "fax", "value": "123"}, headers=bearer(workspace))
    assert bad_kind.status_code == 400 and bad_kind.json()["error"]["field"] == "kind"


def test_unmerge_through_the_api_and_a_merged_id_still_finds_its_person(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    ingest(db, workspace.id, [message("identify", userId="carol")])
    frozen_clock.advance(timedelta(seconds=1))
    ingest(db, workspace.id, [message("track", anonymousId="carol-phone", event="Browse")])
    phone_profile = app_client.get("/api/v1/customers", params={"q": "carol-phone"}, headers=bearer(workspace)).json()
    phone_id = phone_profile["data"][0]["id"]
    frozen_clock.advance(timedelta(seconds=1))
    ingest(db, workspace.id, [message("identify", userId="carol", anonymousId="carol-phone")])

    view = app_client.get(f"/api/v1/customers/{phone_id}", headers=bearer(workspace)).json()
    assert view["requested_id"] == phone_id and view["id"] != phone_id
    assert view["merged_ids"] == [phone_id]
    assert [i["kind"] for i in view["timeline"]["data"]].count("merge") == 1
    merge_id = view["merges"][0]["id"]

    undone = app_client.post(f"/api/v1/merges/{merge_id}/undo", headers=bearer(workspace))
    assert undone.status_code == 200, undone.text
    assert undone.json()["undone_by"].startswith("key:")
    again = app_client.post(f"/api/v1/merges/{merge_id}/undo", headers=bearer(workspace))
    assert again.status_code == 409
    restored = app_client.get(f"/api/v1/customers/{phone_id}", headers=bearer(workspace)).json()
    assert restored["id"] == phone_id
    assert [s["summary"] for s in restored["timeline"]["data"] if s["kind"] == "event"] == ["Browse"]
    audit = app_client.get("/api/v1/audit", headers=bearer(workspace)).json()["data"]
    assert audit[0]["action"] == "customer.unmerge"


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/customers?limit=0", "limit"),
        ("/api/v1/customers?limit=100000", "limit"),
        ("/api/v1/customers?cursor=%%%", "cursor"),
        ("/api/v1/customers?cursor=WzEsMiwzXQ", "cursor"),
        ("/api/v1/customers?trait=novalue", "trait"),
        ("/api/v1/customers/cus_nope", "id"),
        ("/api/v1/customers/cus_nope/timeline", "id"),
        ("/api/v1/customers/cus_nope/events?type=click", "type"),
    ],
)
def test_bad_queries_get_clear_errors(app_client: httpx.Client, workspace: WorkspaceKeys, url: str, field: str) -> None:
    r = app_client.get(url, headers=bearer(workspace))
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["field"] == field
    assert r.json()["error"]["message"]


def test_openapi_is_served(app_client: httpx.Client) -> None:
    assert app_client.get("/docs").status_code == 200
    paths = app_client.get("/openapi.json").json()["paths"]
    assert "/v1/batch" in paths and "/api/v1/customers/{customer_id}" in paths
