"""SPEC §2/§12: no credential of workspace A can read or change anything of workspace B, on every
route the app serves. New routes fail this test until they are given a sample request below."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import select

from shopkeeper.db.models import metadata
from shopkeeper.db.session import Database
from tests.conftest import WorkspaceKeys
from tests.helpers import ingest, message

PUBLIC = {"/health", "/", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
# Public consent pages: the signed token in the path is their credential, not a key. That a token
# of workspace A never acts on workspace B is proved in tests/consent/test_tokens.py and
# tests/consent/test_preference_centre.py.
PUBLIC |= {"/preferences/{token}", "/unsubscribe/{token}", "/consent/confirm/{token}"}
# Streams never end: checked here for 401 only; that one workspace's stream carries none of
# another's events is proved in tests/inbox/test_live.py.
STREAMS = {"/api/v1/inbox/stream"}
WAIT_JOURNEY = {"trigger": {"type": "api"}, "steps": [{"id": "later", "type": "wait", "duration": "30d"}]}

# A valid body for every route that takes one, so the handler would really act if it could.
SAMPLE_BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/identify"): {"userId": "iso-u", "traits": {"email": "iso@example.com"}},
    ("POST", "/v1/track"): {"userId": "iso-u", "event": "Isolated"},
    ("POST", "/v1/page"): {"userId": "iso-u", "name": "Home"},
    ("POST", "/v1/screen"): {"userId": "iso-u", "name": "Home"},
    ("POST", "/v1/group"): {"userId": "iso-u", "groupId": "g"},
    ("POST", "/v1/alias"): {"userId": "iso-u", "previousId": "b-anon"},
    ("POST", "/v1/batch"): {"batch": [{"type": "track", "userId": "b-user", "event": "Isolated"}]},
    ("PATCH", "/api/v1/customers/{customer_id}"): {"traits": {"hacked": True}},
    ("POST", "/api/v1/customers/{customer_id}/identities"): {"kind": "email", "value": "stolen@example.com"},
    ("POST", "/api/v1/merges/{merge_id}/undo"): None,
    ("PATCH", "/api/v1/workspace"): {"name": "Renamed by A"},
    ("POST", "/api/v1/api-keys"): {"kind": "secret", "name": "from A"},
    ("DELETE", "/api/v1/api-keys/{key_id}"): None,
    ("POST", "/api/v1/users"): {"email": "new-user@example.com", "role": "agent"},
    ("PATCH", "/api/v1/users/{user_id}"): {"role": "viewer"},
    ("POST", "/api/v1/topics"): {"key": "b-topic", "purpose": "p", "lawful_basis": "consent", "channels": ["email"]},
    ("PATCH", "/api/v1/topics/{topic_id}"): {"name": "Renamed by A", "archived": True},
    ("POST", "/api/v1/customers/{customer_id}/subscriptions"): {
        "changes": [{"channel": "email", "topic": "*", "status": "opted_out"}]
    },
    ("PUT", "/api/v1/customers/{customer_id}/preferences"): {"frequency": "monthly"},
    ("POST", "/api/v1/customers/{customer_id}/can-contact"): {"channel": "email", "kind": "transactional"},
    ("PUT", "/api/v1/contact-policy"): {"caps": {}},
    ("POST", "/api/v1/suppressions"): {"channel": "email", "address": "b-suppressed@example.com", "reason": "manual"},
    ("DELETE", "/api/v1/suppressions/{suppression_id}"): None,
    ("POST", "/api/v1/sensitive-traits"): {"name": "b_secret_trait", "category": "other"},
    ("DELETE", "/api/v1/sensitive-traits/{trait_id}"): None,
    ("POST", "/api/v1/sensitive-allowances"): {"trait": "health", "usage": "any", "reason": "isolation test reason"},
    ("DELETE", "/api/v1/sensitive-allowances/{allowance_id}"): None,
    ("POST", "/api/v1/customers/{customer_id}/erase"): {"confirm": "cus_of_b"},
    ("POST", "/api/v1/segments"): {"key": "iso-seg", "conditions": {"event": {"name": "B Only"}}},
    ("POST", "/api/v1/segments/preview"): {"conditions": {"event": {"name": "B Only"}}},
    ("PATCH", "/api/v1/segments/{segment_id}"): {
        "name": "Renamed by A",
        "conditions": {"not": {"event": {"name": "x"}}},
    },
    ("DELETE", "/api/v1/segments/{segment_id}"): None,
    ("POST", "/api/v1/segments/{segment_id}/refresh"): None,
    ("POST", "/api/v1/scores/refresh"): None,
    ("POST", "/api/v1/templates"): {"key": "iso-tpl", "kind": "transactional", "content": {"sms": {"text": "x"}}},
    ("PATCH", "/api/v1/templates/{template_id}"): {"name": "Renamed by A", "content": {"sms": {"text": "A"}}},
    ("POST", "/api/v1/templates/{template_id}/preview"): {"customer_id": "cus_of_b"},
    ("POST", "/api/v1/sends"): {"customer_id": "cus_of_b", "channel": "sms", "content": {"sms": {"text": "hi"}}},
    ("POST", "/api/v1/providers"): {"channel": "sms", "name": "iso-dev", "type": "dev"},
    ("PATCH", "/api/v1/providers/{provider_id}"): {"priority": 9, "enabled": False},
    ("DELETE", "/api/v1/providers/{provider_id}"): None,
    ("PATCH", "/api/v1/chat/settings"): {"allowed_origins": ["https://a.example"], "rotate_identity_secret": True},
    ("POST", "/api/v1/webhook-endpoints"): {"url": "https://hooks.a.example/in", "events": ["call.recorded"]},
    ("PATCH", "/api/v1/webhook-endpoints/{endpoint_id}"): {"url": "https://evil.example/in", "enabled": False},
    ("DELETE", "/api/v1/webhook-endpoints/{endpoint_id}"): None,
    ("POST", "/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): None,
    ("POST", "/api/v1/calls"): {
        "external_id": "iso-call",
        "direction": "in",
        "customer": {"user_id": "b-user"},
        "started_at": "2026-01-01T10:00:00Z",
        "disposition": "answered",
    },
    ("POST", "/api/v1/conversations/{conversation_id}/reply"): {"text": "from A"},
    ("POST", "/api/v1/conversations/{conversation_id}/notes"): {"text": "note by A"},
    ("POST", "/api/v1/conversations/{conversation_id}/tags"): {"add": ["by-a"]},
    ("POST", "/api/v1/conversations/{conversation_id}/assign"): {"assignee_id": None},
    ("POST", "/api/v1/conversations/{conversation_id}/snooze"): {"until": "2030-01-01T00:00:00Z"},
    ("POST", "/api/v1/conversations/{conversation_id}/resolve"): None,
    ("POST", "/api/v1/conversations/{conversation_id}/reopen"): None,
    ("PATCH", "/api/v1/conversations/{conversation_id}"): {"priority": "urgent"},
    ("POST", "/api/v1/reviews"): {"source": "iso", "external_id": "r-a", "rating": 1, "text": "A's review"},
    ("POST", "/api/v1/teams"): {"key": "iso-team", "name": "Iso"},
    ("PATCH", "/api/v1/teams/{team_key}"): {"name": "Renamed by A"},
    ("PUT", "/api/v1/routing-rules"): [],
    ("POST", "/api/v1/sla-policies"): {"key": "iso-sla", "name": "Iso", "first_response_minutes": 5},
    ("PUT", "/api/v1/sla-policies/{policy_key}"): {"key": "b-sla", "name": "by A", "first_response_minutes": 1},
    ("POST", "/api/v1/canned-replies"): {"key": "iso-can", "name": "Iso", "body": "Hello"},
    ("PATCH", "/api/v1/canned-replies/{canned_key}"): {"body": "Changed by A"},
    ("DELETE", "/api/v1/canned-replies/{canned_key}"): None,
    ("PATCH", "/api/v1/agents/{user_id}"): {"available": False},
    ("POST", "/api/v1/journeys"): {"key": "iso-j", "name": "Iso", "definition": WAIT_JOURNEY},
    ("POST", "/api/v1/journeys/validate"): {"definition": WAIT_JOURNEY},
    ("PUT", "/api/v1/journeys/{journey_key}/definition"): {"definition": WAIT_JOURNEY},
    ("POST", "/api/v1/journeys/{journey_key}/activate"): None,
    ("POST", "/api/v1/journeys/{journey_key}/pause"): {"reason": "by A"},
    ("POST", "/api/v1/journeys/{journey_key}/resume"): None,
    ("POST", "/api/v1/journeys/{journey_key}/archive"): None,
    ("POST", "/api/v1/journeys/{journey_key}/entries"): {"customer_id": "cus_of_b"},
    ("PUT", "/api/v1/inbox/settings"): {},
    ("POST", "/api/v1/calls/batch"): {
        "calls": [
            {
                "external_id": "iso-call-2",
                "direction": "out",
                "customer": {"user_id": "b-user"},
                "started_at": "2026-01-01T10:00:00Z",
                "disposition": "missed",
            }
        ]
    },
}


def snapshot(db: Database, workspace_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table that belongs to the workspace."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with db.session() as s:
        for table in metadata.sorted_tables:
            column = table.c.get("workspace_id")
            if column is None:
                column = table.c.id if table.name == "workspaces" else None
            if column is None:
                continue
            rows[table.name] = sorted(map(tuple, s.execute(select(table).where(column == workspace_id))), key=repr)
    return rows


def populate_b(app_client: httpx.Client, db: Database, b: WorkspaceKeys) -> dict[str, str]:
    """Give B one of everything a route can address: customer, merge, key, user."""
    from datetime import timedelta

    from shopkeeper import clock
    from shopkeeper.clock import FrozenClock

    fake = FrozenClock(clock.now())
    previous = clock.use(fake)
    try:
        ingest(db, b.id, [message("identify", userId="b-user", traits={"email": "b-secret@example.com"})])
        fake.advance(timedelta(seconds=1))
        ingest(db, b.id, [message("track", anonymousId="b-anon", event="B Only")])
        fake.advance(timedelta(seconds=1))
        ingest(db, b.id, [message("identify", userId="b-user", anonymousId="b-anon")])
    finally:
        clock.use(previous)
    auth = {"Authorization": f"Bearer {b.secret_key}"}
    customer = app_client.get("/api/v1/customers", params={"q": "b-user"}, headers=auth).json()["data"][0]
    view = app_client.get(f"/api/v1/customers/{customer['id']}", headers=auth).json()
    user = app_client.post("/api/v1/users", headers=auth, json={"email": "agent-b@example.com", "role": "agent"}).json()
    key = app_client.get("/api/v1/api-keys", headers=auth).json()[0]
    topic = app_client.post(
        "/api/v1/topics",
        headers=auth,
        json={"key": "b-news", "purpose": "B's", "lawful_basis": "consent", "channels": ["email"]},
    ).json()
    suppression = app_client.post(
        "/api/v1/suppressions", headers=auth, json={"channel": "email", "address": "b-suppressed@example.com"}
    ).json()
    trait = app_client.get("/api/v1/sensitive-traits", headers=auth).json()[0]
    allowance = app_client.post(
        "/api/v1/sensitive-allowances",
        headers=auth,
        json={"trait": "health", "usage": "segment", "reason": "B's own pharmacy reminders"},
    ).json()
    # Built at once, so that the segment schedule has nothing of B's to do during the walk.
    segment = app_client.post(
        "/api/v1/segments", headers=auth, json={"key": "b-seg", "conditions": {"event": {"name": "B Only"}}}
    ).json()
    app_client.post(f"/api/v1/segments/{segment['id']}/refresh", headers=auth)
    template = app_client.post(
        "/api/v1/templates",
        headers=auth,
        json={"key": "b-tpl", "kind": "transactional", "content": {"email": {"subject": "B", "text": "B"}}},
    ).json()
    provider = app_client.post(
        "/api/v1/providers", headers=auth, json={"channel": "email", "name": "b-dev", "type": "dev"}
    ).json()
    send = app_client.post(
        "/api/v1/sends", headers=auth, json={"customer_id": customer["id"], "channel": "email", "template": "b-tpl"}
    ).json()
    # Subscribed to an event nothing of B's raises during the walk (a delivery would change B's rows).
    endpoint = app_client.post(
        "/api/v1/webhook-endpoints",
        headers=auth,
        json={"url": "https://hooks.b.example/in", "events": ["call.recorded"]},
    ).json()
    team = app_client.post(
        "/api/v1/teams", headers=auth, json={"key": "b-team", "name": "B", "members": [user["id"]]}
    ).json()
    policy = app_client.post(
        "/api/v1/sla-policies", headers=auth, json={"key": "b-sla", "name": "B", "first_response_minutes": 60}
    ).json()
    canned = app_client.post(
        "/api/v1/canned-replies", headers=auth, json={"key": "b-can", "name": "B", "body": "Hi {{ customer.name }}"}
    ).json()
    review = app_client.post(
        "/api/v1/reviews",
        headers=auth,
        json={
            "source": "b-site",
            "external_id": "b-1",
            "rating": 5,
            "text": "B's shop is lovely",
            "author": {"user_id": "b-user"},
        },
    ).json()
    app_client.post(
        "/api/v1/journeys", headers=auth, json={"key": "b-journey", "name": "B", "definition": WAIT_JOURNEY}
    )
    app_client.post("/api/v1/journeys/b-journey/activate", headers=auth)
    run = app_client.post(
        "/api/v1/journeys/b-journey/entries", headers=auth, json={"customer_id": customer["id"]}
    ).json()["run"]
    import time

    deadline = time.monotonic() + 30  # the server's own journeys worker takes it to its wait
    while app_client.get(f"/api/v1/journeys/b-journey/runs/{run['id']}", headers=auth).json()["step_id"] != "later" or (
        app_client.get(f"/api/v1/journeys/b-journey/runs/{run['id']}", headers=auth).json()["context"].get("wait")
        != "later"
    ):
        assert time.monotonic() < deadline, "the journey run did not reach its wait"
        time.sleep(0.05)
    deadline = time.monotonic() + 30  # the server's own inbox worker triages it
    while (
        app_client.get(f"/api/v1/conversations/{review['id']}", headers=auth).json()["conversation"]["intent"] is None
    ):
        assert time.monotonic() < deadline, "the review was not triaged"
        time.sleep(0.05)
    deadline = time.monotonic() + 10  # the server's own delivery worker sends it
    while app_client.get(f"/api/v1/sends/{send['id']}", headers=auth).json()["status"] != "delivered":
        assert time.monotonic() < deadline, "the send was not delivered"
        time.sleep(0.02)
    return {
        "template_id": template["id"],
        "endpoint_id": endpoint["id"],
        "provider_id": provider["id"],
        "send_id": send["id"],
        "segment_id": segment["id"],
        "suppression_id": suppression["id"],
        "trait_id": trait["id"],
        "allowance_id": allowance["id"],
        "topic_id": topic["id"],
        "customer_id": customer["id"],
        "merge_id": view["merges"][0]["id"],
        "user_id": user["id"],
        "key_id": key["id"],
        "team_key": team["key"],
        "policy_key": policy["key"],
        "canned_key": canned["key"],
        "conversation_id": review["id"],
        "journey_key": "b-journey",
        "run_id": run["id"],
        "version": "1",
    }


def test_workspace_a_cannot_touch_workspace_b_on_any_route(
    app_client: httpx.Client, db: Database, make_workspace: Any
) -> None:
    a: WorkspaceKeys = make_workspace("A")
    b: WorkspaceKeys = make_workspace("B")
    b_ids = populate_b(app_client, db, b)
    # (The ingestion samples reuse B's user and anonymous ids on purpose — to try to attach A's
    # events to B's profile — so those strings legitimately appear in A's own data.)
    secrets_of_b = [
        *(v for k, v in b_ids.items() if k != "version"),
        "b-secret@example.com",
        b.id,
        b.slug,
        "agent-b@example.com",
    ]
    before = snapshot(db, b.id)

    # The OpenAPI document lists every route the app serves (FastAPI's public view of them).
    schema_paths: dict[str, dict[str, Any]] = app_client.app.openapi()["paths"]  # type: ignore[attr-defined]
    routes = {p: ops for p, ops in schema_paths.items() if p not in PUBLIC}
    assert len(routes) >= 15
    checked = 0
    for template, operations in routes.items():
        if template in STREAMS:
            assert app_client.get(template).status_code == 401
            continue
        for method in sorted(m.upper() for m in operations):
            key = (method, template)
            params = re.findall(r"{(\w+)}", template)
            unknown = [p for p in params if p not in b_ids]
            assert not unknown, f"{key}: give the isolation test an id of B for {unknown}"
            path = template.format(**{p: b_ids[p] for p in params})
            body = SAMPLE_BODIES.get(key)
            assert key in SAMPLE_BODIES or method == "GET", f"{key}: add a sample body to the isolation test"
            credentials = [a.write_key] if template.startswith("/v1/") else [a.secret_key, a.write_key]
            for credential in credentials:
                r = app_client.request(method, path, json=body, headers={"Authorization": f"Bearer {credential}"})
                if params:
                    assert r.status_code in (403, 404), f"{key} with A's key answered {r.status_code}: {r.text}"
                else:
                    assert r.status_code < 500, f"{key}: {r.status_code} {r.text}"
                    leaked = [s for s in secrets_of_b if s in r.text]
                    assert not leaked, f"{key} showed B's data to A: {leaked}"
                checked += 1
            # And without any credential, nothing answers but 401.
            anonymous = app_client.request(method, path, json=body)
            assert anonymous.status_code == 401, f"{key} without credentials answered {anonymous.status_code}"

    assert checked > len(routes)
    assert snapshot(db, b.id) == before, "a request made with A's keys changed workspace B"
