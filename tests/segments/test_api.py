"""SPEC §7/§9: segments through the admin API — saved and versioned, errors that name the bad
node, the sensitive-trait guard (§4), live preview, members, scores; and the tracking API can
never forge the internal events that segment changes write."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select

from shopkeeper.db.session import Database
from shopkeeper.events.models import Event
from shopkeeper.ids import new_id
from shopkeeper.privacy.models import SensitiveAllowance
from tests.conftest import WorkspaceKeys

BUYERS = {"event": {"name": "Order Completed", "op": "gte", "count": 1}}


def _auth(ws: WorkspaceKeys) -> dict[str, str]:
    return {"Authorization": f"Bearer {ws.secret_key}"}


def _track(client: httpx.Client, ws: WorkspaceKeys, body: dict[str, Any]) -> None:
    r = client.post("/v1/track", json=body, headers={"Authorization": f"Bearer {ws.write_key}"})
    assert r.status_code == 200, r.text


def _identify(client: httpx.Client, ws: WorkspaceKeys, user: str, traits: dict[str, Any]) -> None:
    r = client.post(
        "/v1/identify", json={"userId": user, "traits": traits}, headers={"Authorization": f"Bearer {ws.write_key}"}
    )
    assert r.status_code == 200, r.text


def test_an_invalid_definition_is_refused_with_the_path_of_the_bad_node(
    app_client: httpx.Client, workspace: WorkspaceKeys
) -> None:
    body = {
        "key": "bad",
        "conditions": {
            "and": [
                {"trait": {"key": "plan", "op": "eq", "value": "pro"}},
                {"event": {"name": "Order Completed", "within_days": 0}},
            ]
        },
    }
    r = app_client.post("/api/v1/segments", json=body, headers=_auth(workspace))
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "invalid",
        "message": "conditions.and[1].event.within_days: must be positive",
        "field": "conditions.and[1].event.within_days",
    }
    r = app_client.post(
        "/api/v1/segments",
        json={"key": "bad", "conditions": {"or": [{"trait": {"key": "x", "op": "between", "value": [3, 1]}}]}},
        headers=_auth(workspace),
    )
    assert r.json()["error"]["field"] == "conditions.or[0].trait.value"
    assert app_client.get("/api/v1/segments", headers=_auth(workspace)).json()["data"] == []


def test_segments_are_versioned_and_refuse_cycles(app_client: httpx.Client, workspace: WorkspaceKeys) -> None:
    auth = _auth(workspace)
    a = app_client.post("/api/v1/segments", json={"key": "a", "conditions": BUYERS}, headers=auth).json()
    b = app_client.post(
        "/api/v1/segments", json={"key": "b", "conditions": {"segment": {"key": "a"}}}, headers=auth
    ).json()
    assert (a["version"], b["version"]) == (1, 1)
    r = app_client.patch(f"/api/v1/segments/{a['id']}", json={"conditions": {"segment": {"key": "b"}}}, headers=auth)
    assert r.status_code == 400 and "depend on itself" in r.json()["error"]["message"]
    r = app_client.patch(
        f"/api/v1/segments/{a['id']}", json={"conditions": {"not": BUYERS}, "name": "Never bought"}, headers=auth
    )
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["name"] == "Never bought"
    versions = app_client.get(f"/api/v1/segments/{a['id']}/versions", headers=auth).json()
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["conditions"] == BUYERS
    # A rename alone is not a new version; archiving a segment another one uses is refused.
    r = app_client.patch(f"/api/v1/segments/{a['id']}", json={"name": "Renamed"}, headers=auth)
    assert r.json()["version"] == 2
    assert app_client.delete(f"/api/v1/segments/{a['id']}", headers=auth).status_code == 409
    assert app_client.delete(f"/api/v1/segments/{b['id']}", headers=auth).status_code == 200
    assert app_client.post("/api/v1/segments", json={"key": "a", "conditions": BUYERS}, headers=auth).status_code == 409


def test_a_marketing_segment_on_a_sensitive_trait_needs_an_allowance(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    auth = _auth(workspace)
    conditions = {"trait": {"key": "health", "op": "exists"}}
    r = app_client.post("/api/v1/segments", json={"key": "h", "conditions": conditions}, headers=auth)
    assert r.status_code == 422 and r.json()["error"]["code"] == "sensitive_trait"
    assert "'health'" in r.json()["error"]["message"]
    r = app_client.post("/api/v1/segments/preview", json={"conditions": conditions}, headers=auth)
    assert r.status_code == 422
    # Transactional use is allowed; marketing once the workspace recorded why.
    r = app_client.post(
        "/api/v1/segments", json={"key": "h-tx", "purpose": "transactional", "conditions": conditions}, headers=auth
    )
    assert r.status_code == 201
    with db.session(write=True) as session:
        session.add(
            SensitiveAllowance(
                id=new_id("alw"),
                workspace_id=workspace.id,
                trait="health",
                usage="segment",
                reason="pharmacy reminders asked for",
                actor="test",
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
                revoked_at=None,
                revoked_by=None,
            )
        )
    assert (
        app_client.post("/api/v1/segments", json={"key": "h", "conditions": conditions}, headers=auth).status_code
        == 201
    )


def test_preview_counts_and_shows_the_first_members_of_an_unsaved_definition(
    app_client: httpx.Client, workspace: WorkspaceKeys
) -> None:
    for n in range(5):
        _identify(app_client, workspace, f"p{n}", {"plan": "pro" if n % 2 == 0 else "free", "age": 20 + n})
    r = app_client.post(
        "/api/v1/segments/preview",
        json={
            "conditions": {
                "and": [
                    {"trait": {"key": "plan", "op": "eq", "value": "pro"}},
                    {"trait": {"key": "age", "op": "gte", "value": 21}},
                ]
            },
            "limit": 1,
        },
        headers=_auth(workspace),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 2 and len(body["customers"]) == 1
    assert body["customers"][0]["traits"]["plan"] == "pro"


def test_the_tracking_api_cannot_create_internal_events(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    write = {"Authorization": f"Bearer {workspace.write_key}"}
    forged = {"type": "internal", "userId": "u", "event": "Segment Entered", "properties": {"segment_id": "x"}}
    r = app_client.post("/v1/batch", json={"batch": [forged]}, headers=write)
    assert r.status_code == 400 and r.json()["accepted"] == 0
    r = app_client.post("/v1/track", json={**forged}, headers=write)
    assert r.status_code in (200, 400)  # refused, or stored as the endpoint's own type (track)
    with db.session() as session:
        internal = session.scalar(
            select(func.count()).select_from(Event).where(Event.workspace_id == workspace.id, Event.type == "internal")
        )
    assert internal == 0


def test_members_scores_and_the_customer_view_function(app_client: httpx.Client, workspace: WorkspaceKeys) -> None:
    auth = _auth(workspace)
    for n in range(3):
        _track(app_client, workspace, {"userId": f"m{n}", "event": "Order Completed", "properties": {"total": 10 + n}})
    segment = app_client.post("/api/v1/segments", json={"key": "buyers", "conditions": BUYERS}, headers=auth).json()
    refreshed = app_client.post(f"/api/v1/segments/{segment['id']}/refresh", headers=auth).json()
    assert refreshed["members"] == 3
    first = app_client.get(f"/api/v1/segments/{segment['id']}/members", params={"limit": 2}, headers=auth).json()
    rest = app_client.get(
        f"/api/v1/segments/{segment['id']}/members", params={"cursor": first["next_cursor"]}, headers=auth
    ).json()
    assert len(first["data"]) == 2 and len(rest["data"]) == 1 and rest["next_cursor"] is None
    runs = app_client.post("/api/v1/scores/refresh", headers=auth).json()["runs"]
    assert {r["kind"] for r in runs} == {"rfm", "clv", "satisfaction"}
    customer_id = first["data"][0]["customer_id"]
    view = app_client.get(f"/api/v1/scores/customers/{customer_id}", headers=auth).json()
    assert view["segments"][0]["key"] == "buyers"
    assert {"rfm", "rfm_r", "rfm_f", "rfm_m", "rfm_segment"} <= set(view["scores"])
    assert app_client.get("/api/v1/scores/customers/cus_nope", headers=auth).status_code == 404
