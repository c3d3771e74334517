"""SPEC §4/§9: the suppression list through the admin API — look-up by keyed hash, add, lift,
every change audited, bad input refused with a 400 naming the field and nothing written."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from shopkeeper import clock
from shopkeeper.auth.models import AuditEntry
from shopkeeper.consent.service import suppress
from shopkeeper.db.session import Database
from tests.conftest import WorkspaceKeys
from tests.privacy.people import bearer
from tests.test_workspace_isolation import snapshot


def add(app_client: httpx.Client, ws: WorkspaceKeys, **body: Any) -> httpx.Response:
    return app_client.post("/api/v1/suppressions", headers=bearer(ws), json=body)


def listing(app_client: httpx.Client, ws: WorkspaceKeys, **params: Any) -> list[dict[str, Any]]:
    r = app_client.get("/api/v1/suppressions", headers=bearer(ws), params=params)
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


def audit_actions(db: Database, ws: WorkspaceKeys) -> list[tuple[str, dict[str, Any]]]:
    with db.session() as s:
        rows = s.scalars(
            select(AuditEntry).where(AuditEntry.workspace_id == ws.id).order_by(AuditEntry.created_at, AuditEntry.id)
        )
        return [(a.action, a.details) for a in rows if a.subject_type == "suppression"]


def test_add_normalises_the_address_is_idempotent_and_audited(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    r = add(
        app_client, workspace, channel="email", address="  Ann@Example.COM ", reason="complaint", note="spam report"
    )
    assert r.status_code == 201, r.text
    entry = r.json()
    assert (entry["channel"], entry["address"], entry["reason"], entry["note"]) == (
        "email",
        "ann@example.com",
        "complaint",
        "spam report",
    )
    again = add(app_client, workspace, channel="email", address="ann@example.com", reason="manual")
    assert again.status_code == 200 and again.json()["id"] == entry["id"] and again.json()["reason"] == "complaint"
    assert audit_actions(db, workspace) == [
        (
            "suppression.add",
            {"channel": "email", "address": "ann@example.com", "reason": "complaint", "note": "spam report"},
        )
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "fax", "address": "ann@example.com"}, "channel"),
        ({"channel": "chat", "address": "user-1"}, "channel"),
        ({"channel": "email", "address": "not an email"}, "address"),
        ({"channel": "sms", "address": "12"}, "address"),
        ({"channel": "email", "address": "ann@example.com", "reason": "erased"}, "reason"),
        ({"channel": "email", "address": "ann@example.com", "reason": "bored"}, "reason"),
        ({"channel": "email"}, "address"),
        ({"address": "ann@example.com"}, "channel"),
        ({"channel": "email", "address": ""}, "address"),
        ({"channel": "email", "address": "ann@example.com", "note": "x" * 501}, "note"),
        ({"channel": "email", "address": "ann@example.com", "note": "nul\x00"}, "note"),
        ({"channel": "email", "address": "ann@example.com", "colour": "red"}, "colour"),
        ({"channel": 7, "address": "ann@example.com"}, "channel"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, body: dict[str, Any], field: str
) -> None:
    before = snapshot(db, workspace.id)
    r = add(app_client, workspace, **body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid" and error["field"] == field and field in error["message"]
    assert snapshot(db, workspace.id) == before


def test_list_filters_and_pages(app_client: httpx.Client, db: Database, workspace: WorkspaceKeys) -> None:
    for channel, address, reason in [
        ("email", "a@example.com", "hard_bounce"),
        ("email", "b@example.com", "complaint"),
        ("sms", "+14155550123", "stop"),
        ("push", "device-token-1", "manual"),
    ]:
        assert add(app_client, workspace, channel=channel, address=address, reason=reason).status_code == 201
    assert [e["address"] for e in listing(app_client, workspace)] == [
        "device-token-1",
        "+14155550123",
        "b@example.com",
        "a@example.com",
    ]
    assert [e["address"] for e in listing(app_client, workspace, channel="email")] == ["b@example.com", "a@example.com"]
    assert [e["address"] for e in listing(app_client, workspace, reason="stop")] == ["+14155550123"]
    # by address, in any spelling, on the channel given or on every channel it can be
    assert [e["address"] for e in listing(app_client, workspace, address="A@EXAMPLE.com")] == ["a@example.com"]
    assert [e["channel"] for e in listing(app_client, workspace, address="+1 (415) 555-0123")] == ["sms"]
    assert listing(app_client, workspace, address="+1 415 555 0123", channel="whatsapp") == []
    assert listing(app_client, workspace, address="nobody@example.com") == []

    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        r = app_client.get("/api/v1/suppressions", headers=bearer(workspace), params=params)
        seen += [e["address"] for e in r.json()["data"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 4 and len(set(seen)) == 4


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"channel": "fax"}, "channel"),
        ({"reason": "bored"}, "reason"),
        ({"address": "not an email", "channel": "email"}, "address"),
        ({"cursor": "garbage"}, "cursor"),
        ({"cursor": "WyJcdTAwMDAiXQ"}, "cursor"),  # a well-formed cursor holding a NUL
        ({"limit": 0}, "limit"),
    ],
)
def test_bad_filters_are_400s_naming_the_field(
    app_client: httpx.Client, workspace: WorkspaceKeys, params: dict[str, Any], field: str
) -> None:
    r = app_client.get("/api/v1/suppressions", headers=bearer(workspace), params=params)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field


def test_lift_deletes_and_audits_but_never_lifts_an_erasure(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    entry = add(app_client, workspace, channel="sms", address="+14155550123", reason="stop").json()
    r = app_client.delete(f"/api/v1/suppressions/{entry['id']}", headers=bearer(workspace))
    assert r.status_code == 200 and r.json()["id"] == entry["id"]
    assert listing(app_client, workspace) == []
    assert [a for a, _ in audit_actions(db, workspace)] == ["suppression.add", "suppression.remove"]
    gone = app_client.delete(f"/api/v1/suppressions/{entry['id']}", headers=bearer(workspace))
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"

    with db.session(write=True) as s:
        erased = suppress(s, workspace.id, "email", "gone@example.com", "erased", clock.now(), keep_address=False)
        erased_id = erased.id
    before = snapshot(db, workspace.id)
    refused = app_client.delete(f"/api/v1/suppressions/{erased_id}", headers=bearer(workspace))
    assert refused.status_code == 409 and "erasing a customer" in refused.json()["error"]["message"]
    assert snapshot(db, workspace.id) == before
    found = listing(app_client, workspace, address="Gone@Example.com")
    assert [(e["id"], e["address"], e["reason"]) for e in found] == [(erased_id, None, "erased")]


def test_every_route_needs_the_secret_key(app_client: httpx.Client, workspace: WorkspaceKeys) -> None:
    assert app_client.get("/api/v1/suppressions").status_code == 401
    write = {"Authorization": f"Bearer {workspace.write_key}"}
    r = app_client.post("/api/v1/suppressions", headers=write, json={"channel": "email", "address": "a@example.com"})
    assert r.status_code == 403
