"""SPEC §3: the Segment HTTP Tracking API — auth, validation, limits, batches, idempotency, skew."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from shopkeeper.clock import FrozenClock
from shopkeeper.db.session import Database
from shopkeeper.events.models import Event
from tests.conftest import WorkspaceKeys


def stored(db: Database, **where: Any) -> list[Event]:
    with db.session() as s:
        query = select(Event)
        for column, value in where.items():
            query = query.where(getattr(Event, column) == value)
        return list(s.scalars(query))


def count(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Event)) or 0)


def test_track_with_write_key_as_basic_auth_user_is_stored(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    r = app_client.post(
        "/v1/track",
        auth=(workspace.write_key, ""),
        json={"userId": "u-1", "event": "Order Completed", "properties": {"total": 42}},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True}
    (event,) = stored(db)
    assert (event.type, event.name, event.user_id, event.workspace_id) == (
        "track",
        "Order Completed",
        "u-1",
        workspace.id,
    )
    assert event.properties == {"total": 42}


@pytest.mark.parametrize(
    ("path", "body", "column", "expected"),
    [
        ("identify", {"userId": "u", "traits": {"plan": "pro"}}, "traits", {"plan": "pro"}),
        ("page", {"anonymousId": "a", "name": "Home", "properties": {"url": "https://x.test/"}}, "name", "Home"),
        ("screen", {"anonymousId": "a", "name": "Cart"}, "name", "Cart"),
        ("group", {"userId": "u", "groupId": "org-1", "traits": {"seats": 3}}, "group_id", "org-1"),
        ("alias", {"userId": "u", "previousId": "a"}, "previous_id", "a"),
    ],
)
def test_every_single_event_endpoint_stores_its_type(
    app_client: httpx.Client,
    db: Database,
    workspace: WorkspaceKeys,
    path: str,
    body: dict[str, Any],
    column: str,
    expected: Any,
) -> None:
    r = app_client.post(f"/v1/{path}", auth=(workspace.write_key, ""), json=body)
    assert r.status_code == 200, r.text
    (event,) = stored(db)
    assert event.type == path
    assert getattr(event, column) == expected


def test_write_key_in_the_body_is_accepted(app_client: httpx.Client, db: Database, workspace: WorkspaceKeys) -> None:
    r = app_client.post("/v1/track", json={"writeKey": workspace.write_key, "anonymousId": "a", "event": "E"})
    assert r.status_code == 200, r.text
    assert count(db) == 1


@pytest.mark.parametrize(
    ("auth", "status", "code"),
    [
        (None, 401, "unauthorized"),
        (("wk_not-a-real-key", ""), 401, "unauthorized"),
        ("secret", 403, "forbidden"),
    ],
)
def test_ingestion_needs_a_valid_write_key(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, auth: Any, status: int, code: str
) -> None:
    credentials = (workspace.secret_key, "") if auth == "secret" else auth
    r = app_client.post("/v1/track", auth=credentials, json={"anonymousId": "a", "event": "E"})
    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    assert count(db) == 0


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("track", {"event": "E"}, "userId"),
        ("track", {"userId": "u"}, "event"),
        ("track", {"userId": "u", "event": ""}, "event"),
        ("track", {"userId": "u", "event": "E", "properties": [1, 2]}, "properties"),
        ("track", {"userId": "u", "event": "E", "timestamp": "yesterday"}, "timestamp"),
        ("track", {"userId": "u" * 201, "event": "E"}, "userId"),
        ("group", {"userId": "u"}, "groupId"),
        ("alias", {"anonymousId": "a", "previousId": "p"}, "userId"),
        ("identify", {"userId": "u", "traits": "plan=pro"}, "traits"),
    ],
)
def test_bad_events_get_a_400_naming_the_field(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, path: str, body: dict[str, Any], field: str
) -> None:
    r = app_client.post(f"/v1/{path}", auth=(workspace.write_key, ""), json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["field"] == field
    assert field in error["message"]
    assert count(db) == 0


def test_malformed_json_is_a_clear_400(app_client: httpx.Client, workspace: WorkspaceKeys) -> None:
    r = app_client.post(
        "/v1/batch",
        auth=(workspace.write_key, ""),
        content=b'{"batch": [',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "body"
    assert "malformed JSON" in r.json()["error"]["message"]


def test_an_event_over_32_kb_is_refused_naming_the_limit(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    big = {"userId": "u", "event": "E", "properties": {"blob": "x" * (33 * 1024)}}
    r = app_client.post("/v1/track", auth=(workspace.write_key, ""), json=big)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "too_large"
    assert "32 KB" in r.json()["error"]["message"]
    assert count(db) == 0


def test_a_batch_over_500_kb_is_refused_whole(app_client: httpx.Client, db: Database, workspace: WorkspaceKeys) -> None:
    events = [{"type": "track", "userId": f"u{i}", "event": "E", "properties": {"p": "y" * 20_000}} for i in range(30)]
    r = app_client.post("/v1/batch", auth=(workspace.write_key, ""), json={"batch": events})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "too_large"
    assert "500 KB" in r.json()["error"]["message"]
    assert count(db) == 0


def test_bad_and_oversized_events_are_reported_while_the_rest_of_the_batch_is_stored(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    batch = [
        {"type": "track", "userId": "u1", "event": "Good One", "messageId": "ok-1"},
        {"type": "track", "event": "No Id", "messageId": "bad-1"},
        {"type": "track", "userId": "u1", "event": "Huge", "properties": {"p": "z" * 40_000}, "messageId": "bad-2"},
        {"type": "nonsense", "userId": "u1", "messageId": "bad-3"},
        "not an object",
        {"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com"}, "messageId": "ok-2"},
    ]
    r = app_client.post("/v1/batch", auth=(workspace.write_key, ""), json={"batch": batch})
    assert r.status_code == 400
    body = r.json()
    assert body["accepted"] == 2
    assert [(e["index"], e["field"]) for e in body["rejected"]] == [(1, "userId"), (2, "body"), (3, "type"), (4, None)]
    assert body["rejected"][1]["code"] == "too_large"
    assert body["error"]["field"] == "batch[1].userId"
    assert sorted(e.message_id for e in stored(db)) == ["ok-1", "ok-2"]


def test_a_retried_message_id_is_stored_once_over_http(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    event = {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "retry-me"}
    for _ in range(3):
        assert app_client.post("/v1/batch", auth=(workspace.write_key, ""), json={"batch": [event]}).status_code == 200
    assert app_client.post("/v1/track", auth=(workspace.write_key, ""), json=event).status_code == 200
    assert len(stored(db, message_id="retry-me")) == 1


def test_message_ids_are_scoped_to_the_workspace(app_client: httpx.Client, db: Database, make_workspace: Any) -> None:
    a, b = make_workspace("A"), make_workspace("B")
    event = {"userId": "u1", "event": "E", "messageId": "same-id"}
    for ws in (a, b):
        assert app_client.post("/v1/track", auth=(ws.write_key, ""), json=event).status_code == 200
    assert {e.workspace_id for e in stored(db, message_id="same-id")} == {a.id, b.id}


def test_timestamp_is_corrected_for_device_clock_skew(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    # The device clock is 3 hours fast: it says the event happened 5 s before it was sent.
    device_event = datetime(2026, 3, 1, 15, 0, 0, tzinfo=UTC)
    payload = {
        "batch": [{"type": "track", "userId": "u", "event": "E", "timestamp": device_event.isoformat()}],
        "sentAt": (device_event + timedelta(seconds=5)).isoformat(),
    }
    assert app_client.post("/v1/batch", auth=(workspace.write_key, ""), json=payload).status_code == 200
    (event,) = stored(db)
    assert event.received_at == frozen_clock.now()
    assert event.timestamp == frozen_clock.now() - timedelta(seconds=5)
    assert event.original_timestamp == device_event


def test_without_sent_at_the_timestamp_is_kept_and_without_timestamp_it_is_the_receive_time(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    when = "2026-02-01T08:30:00+01:00"
    batch = [
        {"type": "track", "userId": "u", "event": "Given", "timestamp": when},
        {"type": "track", "userId": "u", "event": "Missing"},
    ]
    assert app_client.post("/v1/batch", auth=(workspace.write_key, ""), json={"batch": batch}).status_code == 200
    by_name = {e.name: e for e in stored(db)}
    assert by_name["Given"].timestamp == datetime(2026, 2, 1, 7, 30, tzinfo=UTC)
    assert by_name["Missing"].timestamp == frozen_clock.now()


def test_batch_context_applies_to_every_event(app_client: httpx.Client, db: Database, workspace: WorkspaceKeys) -> None:
    payload = {
        "batch": [{"type": "track", "userId": "u", "event": "E", "context": {"ip": "203.0.113.9"}}],
        "context": {"library": {"name": "analytics-test"}, "ip": "198.51.100.1"},
    }
    assert app_client.post("/v1/batch", auth=(workspace.write_key, ""), json=payload).status_code == 200
    (event,) = stored(db)
    assert event.context == {"library": {"name": "analytics-test"}, "ip": "203.0.113.9"}


def test_gzip_bodies_are_accepted(app_client: httpx.Client, db: Database, workspace: WorkspaceKeys) -> None:
    body = gzip.compress(orjson.dumps({"batch": [{"type": "track", "userId": "u", "event": "Zipped"}]}))
    r = app_client.post(
        "/v1/batch",
        auth=(workspace.write_key, ""),
        content=body,
        headers={"content-encoding": "gzip", "content-type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert [e.name for e in stored(db)] == ["Zipped"]


def test_a_gzip_bomb_is_refused(app_client: httpx.Client, db: Database, workspace: WorkspaceKeys) -> None:
    inflated = orjson.dumps(
        {"batch": [{"type": "track", "userId": "u", "event": "E", "properties": {"p": "0" * 2_000_000}}]}
    )
    r = app_client.post(
        "/v1/batch",
        auth=(workspace.write_key, ""),
        content=gzip.compress(inflated),
        headers={"content-encoding": "gzip", "content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "too_large"
    assert count(db) == 0
