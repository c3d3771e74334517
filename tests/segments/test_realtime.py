"""SPEC §7: membership follows events in real time (only the segments an event can change are
re-checked), windows are re-checked by the schedule as the (simulated) clock moves, and every
entry and exit is one internal event on the customer's timeline — recorded exactly once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from shopkeeper.clock import FrozenClock
from shopkeeper.db.session import Database
from shopkeeper.events.models import Event
from shopkeeper.runtime import Runtime
from shopkeeper.segments.schedule import SegmentSchedule
from tests.conftest import WorkspaceKeys

BIG_BUYERS = {
    "event": {
        "name": "Order Completed",
        "op": "gte",
        "count": 2,
        "within_days": 30,
        "where": [{"property": "total", "op": "gt", "value": 50}],
    }
}


def _runtime(client: httpx.Client) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def _send(client: httpx.Client, ws: WorkspaceKeys, path: str, body: dict[str, Any]) -> None:
    r = client.post(path, json=body, headers={"Authorization": f"Bearer {ws.write_key}"})
    assert r.status_code == 200, r.text
    assert _runtime(client).segments.wait_idle(), "the real-time worker did not finish"


def _customer(client: httpx.Client, ws: WorkspaceKeys, user: str) -> str:
    r = client.get("/api/v1/customers", params={"q": user}, headers={"Authorization": f"Bearer {ws.secret_key}"})
    return str(r.json()["data"][0]["id"])


def _segments_of(client: httpx.Client, ws: WorkspaceKeys, customer_id: str) -> list[str]:
    r = client.get(f"/api/v1/scores/customers/{customer_id}", headers={"Authorization": f"Bearer {ws.secret_key}"})
    return [s["key"] for s in r.json()["segments"]]


def _changes(db: Database, customer_id: str) -> list[tuple[str, str]]:
    with db.session() as session:
        rows = session.execute(
            select(Event.name, Event.properties)
            .where(Event.customer_id == customer_id, Event.type == "internal")
            .order_by(Event.timestamp, Event.id)
        )
        return [(str(name), str(props["segment_key"])) for name, props in rows]


def test_membership_follows_events_and_the_clock(
    frozen_clock: FrozenClock, app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    auth = {"Authorization": f"Bearer {workspace.secret_key}"}
    for key, conditions in (
        ("big-buyers", BIG_BUYERS),
        (
            "pro-big-buyers",
            {"and": [{"segment": {"key": "big-buyers"}}, {"trait": {"key": "plan", "op": "eq", "value": "pro"}}]},
        ),
        ("browsers", {"event": {"name": "Page Viewed"}}),
    ):
        r = app_client.post("/api/v1/segments", json={"key": key, "conditions": conditions}, headers=auth)
        assert r.status_code == 201, r.text
    schedule = SegmentSchedule(db, windowed_every=timedelta(minutes=15), full_every=timedelta(days=60))
    assert {r.key for r in schedule.tick()} == {"big-buyers", "pro-big-buyers", "browsers"}  # new: built at once
    _send(app_client, workspace, "/v1/identify", {"userId": "ann", "traits": {"plan": "pro"}})
    ann = _customer(app_client, workspace, "ann")
    assert _segments_of(app_client, workspace, ann) == []

    order = {"userId": "ann", "event": "Order Completed", "properties": {"total": 80}}
    _send(app_client, workspace, "/v1/track", order)
    assert _segments_of(app_client, workspace, ann) == []  # one order is not two
    _send(
        app_client, workspace, "/v1/track", {"userId": "bob", "event": "Order Completed", "properties": {"total": 20}}
    )
    frozen_clock.advance(timedelta(days=10))
    _send(app_client, workspace, "/v1/track", order)
    # Entered, and the segment built on it followed in the same round.
    assert _segments_of(app_client, workspace, ann) == ["big-buyers", "pro-big-buyers"]
    bob = _customer(app_client, workspace, "bob")
    assert _segments_of(app_client, workspace, bob) == []

    # A trait change re-checks the segments that read the trait.
    _send(app_client, workspace, "/v1/identify", {"userId": "ann", "traits": {"plan": "free"}})
    assert _segments_of(app_client, workspace, ann) == ["big-buyers"]

    # Time alone: 21 days on, the first order has left the 30-day window. No event came; the
    # schedule re-checks windowed segments.
    frozen_clock.advance(timedelta(days=21))
    results = {r.key: r for r in schedule.tick()}
    assert results["big-buyers"].exited == 1
    assert "browsers" not in results  # not windowed, refreshed recently: left alone
    assert _segments_of(app_client, workspace, ann) == []

    assert _changes(db, ann) == [
        ("Segment Entered", "big-buyers"),
        ("Segment Entered", "pro-big-buyers"),
        ("Segment Exited", "pro-big-buyers"),
        ("Segment Exited", "big-buyers"),
    ]
    # A full reconciliation finds nothing new to record: each change was written once.
    schedule.full_every = timedelta(hours=1)
    for result in schedule.tick(frozen_clock.now() + timedelta(hours=7)):
        assert (result.entered, result.exited) == (0, 0)
    assert len(_changes(db, ann)) == 4
    timeline = app_client.get(f"/api/v1/customers/{ann}/timeline", headers=auth).json()["data"]
    names = [
        item["data"]["name"] for item in timeline if item["kind"] == "event" and item["data"]["type"] == "internal"
    ]
    assert names == ["Segment Exited", "Segment Exited", "Segment Entered", "Segment Entered"]


def test_only_segments_that_name_the_event_are_re_evaluated(
    frozen_clock: FrozenClock, app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    auth = {"Authorization": f"Bearer {workspace.secret_key}"}
    app_client.post(
        "/api/v1/segments", json={"key": "viewers", "conditions": {"event": {"name": "Page Viewed"}}}, headers=auth
    )
    app_client.post(
        "/api/v1/segments", json={"key": "signed", "conditions": {"event": {"name": "Signed Up"}}}, headers=auth
    )
    realtime = _runtime(app_client).segments
    index = realtime.index
    with db.session() as session:
        built = index(session, workspace.id)
    assert set(built.by_event) == {"Page Viewed", "Signed Up"}
    _send(app_client, workspace, "/v1/track", {"userId": "cy", "event": "Page Viewed"})
    _send(app_client, workspace, "/v1/track", {"userId": "cy", "event": "Something Else"})
    cy = _customer(app_client, workspace, "cy")
    assert _changes(db, cy) == [("Segment Entered", "viewers")]
    assert realtime.changes == 1


def test_the_schedule_runs_on_one_server_at_a_time(frozen_clock: FrozenClock, db: Database) -> None:
    first, second = SegmentSchedule(db, holder="one"), SegmentSchedule(db, holder="two")
    now = frozen_clock.now()
    assert first.acquire(now) and not second.acquire(now)
    assert first.acquire(now + timedelta(seconds=30))  # the holder renews
    assert second.acquire(now + timedelta(minutes=3))  # an abandoned lease expires
    assert not first.acquire(now + timedelta(minutes=3, seconds=1))
    second.release()
    assert first.acquire(now + timedelta(minutes=3, seconds=2))
