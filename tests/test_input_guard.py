"""Input no store can hold (a NUL character) or too big to be sane gets a clear 4xx and changes
nothing, on both engines — PostgreSQL cannot store NUL in text or JSON, SQLite can."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from shopkeeper.db.session import Database
from shopkeeper.events.models import Event
from tests.conftest import WorkspaceKeys


def events(db: Database) -> list[Event]:
    with db.session() as s:
        return list(s.scalars(select(Event)))


def test_a_nul_in_one_event_rejects_that_event_only(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    batch: list[dict[str, Any]] = [
        {"type": "track", "userId": "u1", "event": "Fine"},
        {"type": "track", "userId": "u\x00 2", "event": "Bad id"},
        {"type": "track", "userId": "u3", "event": "Bad prop", "properties": {"note": "a\x00b"}},
    ]
    r = app_client.post("/v1/batch", auth=(workspace.write_key, ""), json={"batch": batch})
    assert r.status_code == 400, r.text
    assert [e["index"] for e in r.json()["rejected"]] == [1, 2]
    assert "NUL" in r.json()["rejected"][0]["message"]
    assert [e.name for e in events(db)] == ["Fine"]
    single = app_client.post("/v1/track", auth=(workspace.write_key, ""), json={"userId": "u", "event": "x\x00"})
    assert single.status_code == 400 and "NUL" in single.json()["error"]["message"]


def test_a_nul_in_an_admin_body_or_url_is_refused(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    headers = {"Authorization": f"Bearer {workspace.secret_key}"}
    app_client.post("/v1/identify", auth=(workspace.write_key, ""), json={"userId": "nul-test"})
    customer = app_client.get("/api/v1/customers", params={"q": "nul-test"}, headers=headers).json()["data"][0]
    r = app_client.patch(f"/api/v1/customers/{customer['id']}", json={"traits": {"bio": "x\x00y"}}, headers=headers)
    assert r.status_code == 400 and r.json()["error"]["field"] == "traits.bio"
    after = app_client.get(f"/api/v1/customers/{customer['id']}", headers=headers).json()
    assert "bio" not in after["traits"]
    q = app_client.get("/api/v1/customers?q=ab%00cd", headers=headers)
    assert q.status_code == 400 and q.json()["error"]["field"] == "url"


def test_an_oversized_admin_body_is_refused(app_client: httpx.Client, workspace: WorkspaceKeys) -> None:
    headers = {"Authorization": f"Bearer {workspace.secret_key}"}
    r = app_client.patch(
        "/api/v1/workspace",
        content=b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}',
        headers={**headers, "content-type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


def test_a_nul_hidden_in_a_url_encoded_form_is_refused(app_client: httpx.Client) -> None:
    response = app_client.post(
        "/login",
        content=b"email=a%00b%40example.com&password=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("a form field contains a NUL")
