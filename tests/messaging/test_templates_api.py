"""Templates through the admin API: Liquid errors with line and column at save time, versions,
a preview rendered for a real customer, the sensitive-trait guard, and sends planned by API."""

from __future__ import annotations

import httpx
import pytest

from shopkeeper.db.session import Database
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer, make_topic


def _auth(ws: WorkspaceKeys) -> dict[str, str]:
    return {"Authorization": f"Bearer {ws.secret_key}"}


@pytest.mark.parametrize(
    ("content", "field", "where"),
    [
        ({"email": {"subject": "Hi", "html": "<p>\n  {% if x %}open</p>"}}, "content.email.html", None),
        ({"email": {"subject": "Hi", "text": "line one\nline two {{ name | nope }}"}}, "content.email.text", (2, 20)),
        ({"sms": {"text": "Hi {{ customer.first_name "}}, "content.sms.text", None),
        ({"email": {"subject": "{% for %}", "text": "x"}}, "content.email.subject", (1, 4)),
        ({"fax": {"text": "x"}}, "content.fax", None),
        ({"sms": {"body": "x"}}, "content.sms.body", None),
        ({"email": {"html": "<p>x</p>"}}, "content.email.subject", None),
        ({}, "content", None),
    ],
)
def test_a_broken_template_is_refused_at_save_naming_part_line_and_column(
    app_client: httpx.Client,
    workspace: WorkspaceKeys,
    content: dict[str, object],
    field: str,
    where: tuple[int, int] | None,
) -> None:
    r = app_client.post(
        "/api/v1/templates",
        json={"key": "broken", "kind": "transactional", "content": content},
        headers=_auth(workspace),
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["field"] == field and field in error["message"]
    if where is not None:
        assert f"line {where[0]}, column {where[1]}" in error["message"]
    assert app_client.get("/api/v1/templates", headers=_auth(workspace)).json() == []


def test_versions_preview_and_the_sensitive_trait_guard(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    auth = _auth(workspace)
    make_topic(db, workspace.id, "offers")
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    app_client.patch(f"/api/v1/customers/{ann}", json={"traits": {"first_name": "Ann <b>"}}, headers=auth)
    body = {
        "key": "promo",
        "name": "Promo",
        "kind": "marketing",
        "topic": "offers",
        "content": {
            "email": {"subject": "Hi {{ customer.first_name }}", "html": "<p>{{ customer.first_name }}</p>"},
            "sms": {"text": "Hi {{ customer.first_name }}, order {{ event.order_id }}"},
        },
    }
    created = app_client.post("/api/v1/templates", json=body, headers=auth)
    assert created.status_code == 201, created.text
    template = created.json()
    assert template["current_version"] == 1
    assert "customer.first_name" in template["variables"]

    preview = app_client.post(
        f"/api/v1/templates/{template['id']}/preview",
        json={"customer_id": ann, "data": {"event": {"order_id": "A-7"}}},
        headers=auth,
    ).json()
    assert preview["rendered"]["email"]["subject"] == "Hi Ann <b>"
    assert preview["rendered"]["email"]["html"] == "<p>Ann &lt;b&gt;</p>"  # HTML parts escape values
    assert preview["rendered"]["sms"]["text"] == "Hi Ann <b>, order A-7"

    changed = app_client.patch(
        f"/api/v1/templates/{template['id']}",
        json={"content": {"sms": {"text": "v2 {{ customer.first_name }}"}}},
        headers=auth,
    ).json()
    assert changed["current_version"] == 2
    versions = app_client.get(f"/api/v1/templates/{template['id']}/versions", headers=auth).json()
    assert [v["version"] for v in versions] == [2, 1]
    old = app_client.post(
        f"/api/v1/templates/{template['id']}/preview", json={"customer_id": ann, "version": 1}, headers=auth
    ).json()
    assert old["rendered"]["sms"]["text"].startswith("Hi Ann")

    # Marketing use of a sensitive trait (the default registry has "health") is refused.
    sensitive = {**body, "key": "health-promo", "content": {"sms": {"text": "{{ customer.traits.health }}"}}}
    r = app_client.post("/api/v1/templates", json=sensitive, headers=auth)
    assert r.status_code == 422 and "health" in r.json()["error"]["message"]
    transactional = {**sensitive, "kind": "transactional", "topic": None}
    assert app_client.post("/api/v1/templates", json=transactional, headers=auth).status_code == 201


def test_sends_through_the_api_are_idempotent_and_show_their_history(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    auth = _auth(workspace)
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    body = {
        "customer_id": ann,
        "channel": "sms",
        "content": {"sms": {"text": "Your code is {{ data.code }}"}},
        "data": {"code": "1234"},
        "idempotency_key": "otp-1",
    }
    first = app_client.post("/api/v1/sends", json=body, headers=auth)
    assert first.status_code == 201, first.text
    again = app_client.post("/api/v1/sends", json=body, headers=auth)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    clash = app_client.post("/api/v1/sends", json={**body, "data": {"code": "9"}}, headers=auth)
    assert clash.status_code == 409 and clash.json()["error"]["field"] == "idempotency_key"

    # No phone: the consent gate skips it and says why.
    send_id = first.json()["id"]
    runtime = app_client.app.state.runtime  # type: ignore[attr-defined]
    runtime.delivery.drain()
    import time

    deadline = time.monotonic() + 10
    while (got := app_client.get(f"/api/v1/sends/{send_id}", headers=auth).json())["status"] == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert got["status"] == "skipped" and got["reason"].startswith("no_address")
    assert [h["status"] for h in got["history"]] == ["queued", "skipped"]
    listed = app_client.get("/api/v1/sends", params={"customer_id": ann}, headers=auth).json()
    assert [s["id"] for s in listed["data"]] == [send_id]

    for bad, field in (
        ({**body, "channel": "fax"}, "channel"),
        ({**body, "customer_id": "cus_nobody"}, "customer_id"),
        ({k: v for k, v in body.items() if k != "content"}, "template"),
        ({**body, "template": "nope", "content": None}, "template"),
        ({**body, "kind": "marketing", "idempotency_key": "k2"}, "topic"),
    ):
        r = app_client.post("/api/v1/sends", json=bad, headers=auth)
        assert 400 <= r.status_code < 500 and field in (r.json()["error"]["field"] or ""), (bad, r.text)


def test_sends_and_interactions_page_newest_first_with_cursors(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    auth = _auth(workspace)
    ann = make_customer(db, workspace.id, "ann", phone="+14155550100")
    ids = []
    for n in range(3):
        body = {"customer_id": ann, "channel": "sms", "content": {"sms": {"text": f"n{n}"}}, "idempotency_key": f"p{n}"}
        ids.append(app_client.post("/api/v1/sends", json=body, headers=auth).json()["id"])
    for path, expected in (("/api/v1/sends", ids[::-1]), ("/api/v1/interactions", None)):
        if expected is None:
            runtime = app_client.app.state.runtime  # type: ignore[attr-defined]
            runtime.delivery.drain()
            import time

            deadline = time.monotonic() + 10
            while len(app_client.get(path, headers=auth).json()["data"]) < 3:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        first = app_client.get(path, params={"limit": 2}, headers=auth).json()
        second = app_client.get(path, params={"limit": 2, "cursor": first["next_cursor"]}, headers=auth).json()
        seen = [row["id"] for row in first["data"] + second["data"]]
        assert len(seen) == len(set(seen)) == 3 and second["next_cursor"] is None
        if expected is not None:
            assert seen == expected
        assert app_client.get(path, params={"cursor": "nonsense"}, headers=auth).status_code == 400
